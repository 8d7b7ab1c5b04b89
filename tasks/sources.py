"""One entry point for every dataset source named in params.yaml: embedded sets, torchvision's
CIFAR-10/100 and STL-10, image folders and .npz arrays, each read by its simclr.data loader.
Images come back at the configured size and channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simclr.config import DataConfig, DatasetConfig
from simclr.data.archives import load_cifar, load_stl10
from simclr.data.arrays import load_npz
from simclr.data.embedded import CHANNELS as EMBEDDED_CHANNELS
from simclr.data.embedded import SOURCES, load_source
from simclr.data.imagefolder import load_image_folder
from simclr.data.prepared import read_rows, release
from simclr.data.source import CHUNK, Rejected, Source, fit_size, to_channels
from simclr.errors import PipelineError


def load_dataset(
    cfg: DatasetConfig, opts: DataConfig, seed: int, scratch: Path | None = None
) -> Source:
    """The dataset `cfg` describes, resized to opts.image_size with opts.channels.

    With `scratch` (a directory), image folders are decoded into a file there and npz arrays
    are memory-mapped (converted, where needed, into a file there), so that the images never
    have to fit in memory; the caller removes `scratch` once it is done with the source.
    Embedded sets and torchvision's archives are read into memory."""
    if cfg.source == "imagefolder":
        return _image_folders(cfg, opts, scratch)
    if cfg.source == "npz":
        source = load_npz(cfg.path, scratch)
        images = _converted(source.images, opts, scratch)
        return Source(images, source.labels, source.class_names, source.split)
    if cfg.source in SOURCES:
        source = load_source(cfg.source, seed)
    else:
        source = (
            load_stl10(cfg.root, cfg.download, cfg.unlabeled)
            if cfg.source == "stl10"
            else load_cifar(cfg.source, cfg.root, cfg.download)
        )
    images = fit_size(to_channels(source.images, opts.channels), opts.image_size, opts.resize)
    return Source(images, source.labels, source.class_names, source.split)


def _converted(images: np.ndarray, opts: DataConfig, scratch: Path | None) -> np.ndarray:
    """`images` at opts.image_size with opts.channels: as they are when they already fit (a
    memory map stays one), else converted CHUNK images at a time into a file in `scratch`."""
    size, channels = opts.image_size, opts.channels or images.shape[-1]
    if images.shape[1:] == (size, size, channels) or scratch is None:
        return fit_size(to_channels(images, opts.channels), size, opts.resize)
    scratch.mkdir(parents=True, exist_ok=True)
    shape = (len(images), size, size, channels)
    out = np.lib.format.open_memmap(scratch / "converted.npy", "w+", np.uint8, shape)
    for i in range(0, len(images), CHUNK):
        rows = read_rows(images, slice(i, i + CHUNK))
        out[i : i + CHUNK] = fit_size(to_channels(rows, opts.channels), size, opts.resize)
        release(out)
    out.flush()
    return np.load(scratch / "converted.npy", mmap_mode="r")


def _image_folders(cfg: DatasetConfig, opts: DataConfig, scratch: Path | None) -> Source:
    """One folder (split by the pipeline) or a train and a test folder with the same classes;
    with `scratch`, all their images decoded into one file there, split after split."""
    roots = {"train": cfg.root}
    if cfg.test_root is not None:
        roots["test"] = cfg.test_root
    channels = opts.channels or 3  # null: RGB, since files need not agree on their mode
    out = None
    if scratch is not None:
        scratch.mkdir(parents=True, exist_ok=True)
        out = scratch / "decoded.u8"
    folders = {
        split: load_image_folder(
            Path(root), opts.image_size, channels, opts.workers, opts.resize, False, out
        )
        for split, root in roots.items()
    }
    classes = folders["train"].classes
    if "test" in folders and folders["test"].classes != classes:
        raise PipelineError(
            f"{cfg.test_root}: class folders {folders['test'].classes} differ from those of "
            f"{cfg.root} ({classes}); both need the same class subfolders"
        )
    rejected = tuple(
        Rejected(str(Path(roots[s]) / p), s if cfg.test_root else "train", label, reason)
        for s, f in folders.items()
        for p, label, reason in f.rejected
    )
    parts = list(folders.values())
    split = None
    if cfg.test_root is not None:
        split = np.repeat(np.array(list(folders)), [len(f.labels) for f in parts])
    if len(parts) == 1:  # its array as is: concatenate would copy every image
        images = parts[0].images
    elif out is not None:  # the splits' rows follow each other in the one file
        n = sum(len(f.labels) for f in parts)
        images = np.memmap(out, np.uint8, "r", 0, (n, *parts[0].images.shape[1:]))
    else:
        images = np.concatenate([f.images for f in parts])
    return Source(
        images=images,
        labels=np.concatenate([f.labels for f in parts]),
        class_names=tuple(classes),
        split=split,
        paths=_full_paths(roots, folders),
        rejected=rejected,
    )


def _full_paths(roots: dict, folders: dict) -> np.ndarray:
    """Each image's file as one object array of str: splitting it copies pointers, where a
    fixed-width "<U" array would store 4 bytes per character of the longest path, twice."""
    n = sum(len(f.paths) for f in folders.values())
    out = np.empty(n, dtype=object)
    i = 0
    for split, folder in folders.items():
        base = Path(roots[split])
        out[i : i + len(folder.paths)] = [str(base / p) for p in folder.paths]
        i += len(folder.paths)
    return out


def source_channels(cfg: DatasetConfig, defaults: DataConfig) -> int | None:
    """The channels a dataset is prepared with, known without reading it: `channels` where
    set, else the source's (embedded sets grayscale; CIFAR, STL-10 and image folders RGB);
    None for an .npz file, whose arrays say."""
    channels = cfg.options(defaults).channels
    if channels is not None:
        return channels
    if cfg.source in EMBEDDED_CHANNELS:
        return EMBEDDED_CHANNELS[cfg.source]
    return None if cfg.source == "npz" else 3

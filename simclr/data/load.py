"""One entry point for every dataset source named in params.yaml: embedded sets, torchvision's
CIFAR-10/100 and STL-10, image folders and .npz arrays. Images come back at the configured size
and channels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from simclr.config import ARCHIVES, DataConfig, DatasetConfig
from simclr.data.archives import load_cifar, load_stl10
from simclr.data.arrays import load_npz
from simclr.data.embedded import SOURCES, load_source
from simclr.data.imagefolder import load_image_folder
from simclr.data.source import Rejected, Source, fit_size, to_channels
from simclr.errors import PipelineError


def load_dataset(cfg: DatasetConfig, opts: DataConfig, seed: int) -> Source:
    """The dataset `cfg` describes, resized to opts.image_size with opts.channels."""
    if cfg.source == "imagefolder":
        return _image_folders(cfg, opts)
    if cfg.source in SOURCES:
        source = load_source(cfg.source, seed)
    elif cfg.source in ARCHIVES:
        source = (
            load_stl10(cfg.root, cfg.download, cfg.unlabeled)
            if cfg.source == "stl10"
            else load_cifar(cfg.source, cfg.root, cfg.download)
        )
    else:
        source = load_npz(cfg.path)
    images = fit_size(to_channels(source.images, opts.channels), opts.image_size, opts.resize)
    return Source(images, source.labels, source.class_names, source.split)


def _image_folders(cfg: DatasetConfig, opts: DataConfig) -> Source:
    """One folder (split by the pipeline) or a train and a test folder with the same classes."""
    roots = {"train": cfg.root}
    if cfg.test_root is not None:
        roots["test"] = cfg.test_root
    channels = opts.channels or 3  # null: RGB, since files need not agree on their mode
    folders = {
        split: load_image_folder(
            Path(root), opts.image_size, channels, opts.workers, opts.resize, strict=False
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
    return Source(
        # One folder: its array as is (concatenate would copy every image).
        images=parts[0].images if len(parts) == 1 else np.concatenate([f.images for f in parts]),
        labels=np.concatenate([f.labels for f in parts]),
        class_names=tuple(classes),
        split=split,
        paths=np.array([str(Path(roots[s]) / p) for s, f in folders.items() for p in f.paths]),
        rejected=rejected,
    )


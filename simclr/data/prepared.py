"""The prepared format: per split uint8 NHWC images and int labels as .npy (memory-mappable),
class names, and a manifest with one row per image.

    <root>/train/images.npy  <root>/train/labels.npy
    <root>/test/images.npy   <root>/test/labels.npy
    <root>/unlabeled/...     (STL-10 with unlabeled: true; labels are -1)
    <root>/classes.json      <root>/manifest.parquet
    <root>/skipped.json      (files dropped by skip_corrupt, with the reason)

Files that could not be decoded (and were not skipped) appear in the manifest with their
`error`, so that validation names them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import mmap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from simclr.data.sampling import sample_per_class
from simclr.data.source import Rejected, Source
from simclr.errors import PipelineError
from simclr.io import atomic_path

SPLITS = ("train", "test")  # the labelled splits every prepared dataset has
MANIFEST_COLUMNS = (
    "split",
    "index",
    "label",
    "source",
    "height",
    "width",
    "channels",
    "pixel_mean",
    "pixel_std",
    "sha256",
    "error",
)


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)
    paths: np.ndarray | None = None  # source file per image, where images come from files


@dataclass(frozen=True)
class Prepared:
    train: Split
    test: Split
    class_names: tuple[str, ...]
    unlabeled: Split | None = None
    rejected: tuple[Rejected, ...] = ()  # undecodable files, kept in the manifest
    skipped: tuple[Rejected, ...] = ()  # undecodable files dropped by skip_corrupt

    def splits(self) -> dict[str, Split]:
        named = {"train": self.train, "test": self.test, "unlabeled": self.unlabeled}
        return {k: v for k, v in named.items() if v is not None}

    @property
    def pretraining(self) -> Split:
        """What SimCLR trains on: the unlabelled split where there is one (STL-10), else train."""
        return self.unlabeled if self.unlabeled is not None else self.train


def _take(source: Source, idx: np.ndarray) -> Split:
    paths = None if source.paths is None else source.paths[idx]
    return Split(source.images[idx], source.labels[idx], paths)


def split_source(
    source: Source,
    test_fraction: float,
    seed: int,
    fraction: float = 1.0,
    max_per_class: int | None = None,
) -> Prepared:
    """Train/test (and unlabelled) splits: the source's own, or a seeded stratified split.
    `fraction` and `max_per_class` subset each class first (`sample_per_class`, seeded); each
    split is shuffled."""
    labels = source.labels
    if source.split is not None:
        parts = {}
        for name in ("train", "test", "unlabeled"):
            idx = np.flatnonzero(source.split == name)
            if name == "unlabeled" and not len(idx):
                continue
            cap = None if name == "unlabeled" else max_per_class
            idx = idx[sample_per_class(labels[idx], fraction, seed, cap)]
            parts[name] = _take(source, np.random.default_rng(seed).permutation(idx))
        return Prepared(
            parts["train"], parts["test"], source.class_names, parts.get("unlabeled"),
            source.rejected,
        )
    idx = sample_per_class(labels, fraction, seed, max_per_class)
    counts = np.bincount(labels[idx], minlength=len(source.class_names))
    if counts[counts > 0].min() < 2:
        lonely = [source.class_names[c] for c in np.flatnonzero(counts == 1)]
        raise PipelineError(
            f"class {lonely[0]!r} has a single image; a stratified train/test split needs at "
            "least 2 per class: add images, or give a separate test set"
        )
    try:
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, stratify=labels[idx], random_state=seed, shuffle=True
        )
    except ValueError as e:
        raise PipelineError(
            f"cannot split {len(idx)} images into train and test with test_fraction "
            f"{test_fraction} ({e}); add images or change test_fraction"
        ) from None
    return Prepared(
        _take(source, train_idx), _take(source, test_idx), source.class_names, None,
        source.rejected,
    )


def skip_rejected(prepared: Prepared) -> Prepared:
    """The same dataset with its undecodable files moved from the manifest to skipped.json."""
    return dataclasses.replace(prepared, rejected=(), skipped=prepared.skipped + prepared.rejected)


def image_stats(images: np.ndarray, chunk: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per image pixel mean and std (float64), in chunks to bound memory."""
    flat = images.reshape(len(images), -1)
    mean, std = np.empty(len(images)), np.empty(len(images))
    for i in range(0, len(images), chunk):
        x = flat[i : i + chunk].astype(np.float64)
        mean[i : i + chunk], std[i : i + chunk] = x.mean(axis=1), x.std(axis=1)
    return mean, std


def manifest(prepared: Prepared) -> pd.DataFrame:
    """One row per image: split, index, label, source file, shape, pixel mean/std, sha256 of
    the pixels; then one row per undecodable file with its `error`."""
    frames = []
    for name, split in prepared.splits().items():
        n, (h, w, c) = len(split.images), split.images.shape[1:]
        mean, std = image_stats(split.images)
        frames.append(
            pd.DataFrame(
                {
                    "split": name,
                    "index": np.arange(n),
                    "label": split.labels,
                    "source": None if split.paths is None else split.paths,
                    "height": h,
                    "width": w,
                    "channels": c,
                    "pixel_mean": mean,
                    "pixel_std": std,
                    "sha256": [hashlib.sha256(img.tobytes()).hexdigest() for img in split.images],
                    "error": None,
                }
            )
        )
    if prepared.rejected:
        frames.append(
            pd.DataFrame(
                {
                    "split": [r.split for r in prepared.rejected],
                    "index": -1,
                    "label": [r.label for r in prepared.rejected],
                    "source": [r.path for r in prepared.rejected],
                    "error": [r.reason for r in prepared.rejected],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True).reindex(columns=list(MANIFEST_COLUMNS))
    return table.astype({"source": "object", "error": "object", "sha256": "object"})


def save_prepared(prepared: Prepared, root: str | Path) -> Path:
    """Write the prepared dataset atomically: a reader sees the old one or the complete new one."""
    with atomic_path(root) as tmp:
        for name, split in prepared.splits().items():
            (tmp / name).mkdir(parents=True)
            np.save(tmp / name / "images.npy", split.images)
            np.save(tmp / name / "labels.npy", split.labels)
        (tmp / "classes.json").write_text(json.dumps(list(prepared.class_names)))
        manifest(prepared).to_parquet(tmp / "manifest.parquet", index=False)
        if prepared.skipped:
            skipped = [dataclasses.asdict(r) for r in prepared.skipped]
            (tmp / "skipped.json").write_text(json.dumps(skipped, indent=2))
    return Path(root)


def load_prepared(root: str | Path, mmap: bool = True) -> Prepared:
    """Read a prepared dataset; images are memory-mapped unless `mmap` is False. A file that is
    truncated, damaged or does not fit the others is a PipelineError naming it."""
    root = Path(root)
    if not (root / "classes.json").is_file():
        raise PipelineError(
            f"{root}: no prepared dataset here; run `dvc repro` (or the prepare stage) first"
        )
    mode = "r" if mmap else None
    names = tuple(_read(root / "classes.json", lambda p: json.loads(p.read_text())))
    splits = {
        name: Split(
            _read(root / name / "images.npy", lambda p: np.load(p, mmap_mode=mode)),
            _read(root / name / "labels.npy", np.load),
        )
        for name in (*SPLITS, "unlabeled")
        if (root / name).is_dir()
    }
    for name, split in splits.items():
        _check_split(root / name, split, len(names))
    if "train" not in splits or "test" not in splits:
        raise _damaged(root, "no train or no test split")
    return Prepared(splits["train"], splits["test"], names, splits.get("unlabeled"))


def _damaged(path: Path, reason: str) -> PipelineError:
    return PipelineError(
        f"{path}: damaged prepared data ({reason}); re-run the prepare stage "
        "(dvc repro -f prepare@<dataset>) or restore it (dvc checkout)"
    )


def _read(path: Path, read):
    """read(path), a missing, truncated or damaged file raised as a PipelineError naming it."""
    try:
        return read(path)
    except (OSError, ValueError, EOFError) as e:  # np.load's and json's errors of a bad file
        raise _damaged(path, " ".join(str(e).split()) or type(e).__name__) from None


def _check_split(folder: Path, split: Split, n_classes: int) -> None:
    images, labels = split.images, split.labels
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise _damaged(folder / "images.npy", f"{images.dtype} {images.shape}, not uint8 NHWC")
    if labels.ndim != 1 or len(labels) != len(images) or labels.dtype.kind not in "iu":
        raise _damaged(
            folder / "labels.npy", f"{labels.dtype} {labels.shape} for {len(images)} images"
        )
    if len(labels) and (labels.min() < -1 or labels.max() >= n_classes):
        raise _damaged(folder / "labels.npy", f"labels outside the {n_classes} classes")


def load_skipped(root: str | Path) -> list[dict]:
    path = Path(root) / "skipped.json"
    return _read(path, lambda p: json.loads(p.read_text())) if path.is_file() else []


def load_manifest(root: str | Path) -> pd.DataFrame:
    path = Path(root) / "manifest.parquet"
    if not path.is_file():
        raise PipelineError(f"{path}: manifest missing; re-run the prepare stage for this dataset")
    return _read(path, pd.read_parquet)  # pyarrow's errors are OSError or ValueError


def read_rows(images: np.ndarray, index, chunk: int = 16) -> np.ndarray:
    """A copy of rows `index` (a slice or index array) of a possibly memory-mapped array.

    Reading a mapped file leaves its pages mapped into this process, so over an epoch the
    process would grow by the whole dataset; and a single page fault maps a whole large folio of
    the page cache (~0.3 MB here), so even one random batch of 512 rows briefly mapped ~150 MB.
    Rows are therefore copied `chunk` at a time and the mapping's pages dropped after each
    (MADV_DONTNEED): memory stays flat, and the kernel's page cache keeps the data."""
    mapping = images
    while mapping is not None and not isinstance(mapping, mmap.mmap):
        mapping = getattr(mapping, "base", None)
    if mapping is None or not hasattr(mmap, "MADV_DONTNEED"):
        return np.array(images[index], copy=True)
    rows = np.arange(len(images))[index] if isinstance(index, slice) else np.asarray(index)
    out = np.empty((len(rows), *images.shape[1:]), dtype=images.dtype)
    for i in range(0, len(rows), chunk):
        out[i : i + chunk] = images[rows[i : i + chunk]]
        mapping.madvise(mmap.MADV_DONTNEED)
    return out

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
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from simclr.data.sampling import sample_per_class
from simclr.data.source import Rejected, Source
from simclr.errors import Damaged, NotFound, PipelineError
from simclr.io import atomic_path

ABOUT = "prepared data"  # what its errors are about (PipelineError.about)
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


def split_indices(
    source: Source,
    test_fraction: float,
    seed: int,
    fraction: float = 1.0,
    max_per_class: int | None = None,
) -> dict[str, np.ndarray]:
    """{split: indices into the source, in the split's order}: the source's own splits, or a
    seeded stratified train/test split. `fraction` and `max_per_class` subset each class first
    (`sample_per_class`, seeded); each split is shuffled. Reads labels only."""
    labels = source.labels
    if source.split is not None:
        parts = {}
        for name in ("train", "test", "unlabeled"):
            idx = np.flatnonzero(source.split == name)
            if name == "unlabeled" and not len(idx):
                continue
            cap = None if name == "unlabeled" else max_per_class
            idx = idx[sample_per_class(labels[idx], fraction, seed, cap)]
            parts[name] = np.random.default_rng(seed).permutation(idx)
        return parts
    idx = sample_per_class(labels, fraction, seed, max_per_class)
    counts = np.bincount(labels[idx], minlength=len(source.class_names))
    if counts[counts > 0].min() < 2:
        lonely = [source.class_names[c] for c in np.flatnonzero(counts == 1)]
        raise PipelineError(
            f"class {lonely[0]!r} has a single image; a stratified train/test split needs at "
            "least 2 per class: add images, or give a separate test set"
        )
    # Imported here: scikit-learn costs every stage ~1.5 s of start-up, and only prepare splits.
    from sklearn.model_selection import train_test_split

    try:
        train_idx, test_idx = train_test_split(
            idx, test_size=test_fraction, stratify=labels[idx], random_state=seed, shuffle=True
        )
    except ValueError as e:
        raise PipelineError(
            f"cannot split {len(idx)} images into train and test with test_fraction "
            f"{test_fraction} ({e}); add images or change test_fraction"
        ) from None
    return {"train": train_idx, "test": test_idx}


def split_source(
    source: Source,
    test_fraction: float,
    seed: int,
    fraction: float = 1.0,
    max_per_class: int | None = None,
) -> Prepared:
    """The splits of `split_indices`, copied into memory (`prepare` writes them straight to
    disk instead)."""
    parts = split_indices(source, test_fraction, seed, fraction, max_per_class)
    return Prepared(
        *(_take(source, parts[name]) for name in SPLITS),
        source.class_names,
        _take(source, parts["unlabeled"]) if "unlabeled" in parts else None,
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


@dataclass(frozen=True)
class Rows:
    """A split to write: rows `index` of `images` (an array or a memory map), in that order."""

    images: np.ndarray
    index: np.ndarray
    labels: np.ndarray
    paths: np.ndarray | None = None


@dataclass(frozen=True)
class Written:
    """What the manifest records of a written split: its rows and per-image measurements."""

    rows: Rows
    mean: np.ndarray
    std: np.ndarray
    digests: np.ndarray  # uint8 (N, 32): sha256 of each image's pixels, as hex in the manifest


WRITE_BYTES = 64 << 20  # pixels copied per chunk when writing a split
STATS_ROWS = 4096  # at most this many images per chunk


def write_split(folder: Path, rows: Rows) -> Written:
    """images.npy and labels.npy of one split in `folder`: the pixels gathered from `rows`
    chunk by chunk and written with plain writes (never mapped here), measured on the way, so
    memory holds one chunk however large the split."""
    folder.mkdir(parents=True)
    n, shape = len(rows.index), rows.images.shape[1:]
    per_chunk = max(1, min(STATS_ROWS, WRITE_BYTES // max(1, int(np.prod(shape)))))
    # Digests as 32 bytes a row: 64-character strings cost ~120 bytes each while every split
    # is written, the stage's peak (they are made once, for the manifest).
    mean, std, digests = np.empty(n), np.empty(n), np.empty((n, 32), np.uint8)
    header = {"descr": "|u1", "fortran_order": False, "shape": (n, *shape)}
    with open(folder / "images.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for i in range(0, n, per_chunk):
            chunk = read_rows(rows.images, rows.index[i : i + per_chunk])
            f.write(chunk)  # its buffer: a tobytes() copy would be one more chunk held
            mean[i : i + len(chunk)], std[i : i + len(chunk)] = image_stats(chunk)
            for j, img in enumerate(chunk, i):
                digests[j] = np.frombuffer(hashlib.sha256(img.tobytes()).digest(), np.uint8)
    np.save(folder / "labels.npy", rows.labels)
    return Written(rows, mean, std, digests)


def manifest(written: dict[str, Written], rejected: tuple[Rejected, ...]) -> pd.DataFrame:
    """One row per image: split, index, label, source file, shape, pixel mean/std, sha256 of
    the pixels; then one row per undecodable file with its `error`."""
    frames = []
    for name, w in written.items():
        n, (h, width, c) = len(w.rows.index), w.rows.images.shape[1:]
        frames.append(
            pd.DataFrame(
                {
                    "split": name,
                    "index": np.arange(n),
                    "label": w.rows.labels,
                    "source": None if w.rows.paths is None else w.rows.paths,
                    "height": h,
                    "width": width,
                    "channels": c,
                    "pixel_mean": w.mean,
                    "pixel_std": w.std,
                    "sha256": [d.tobytes().hex() for d in w.digests],
                    "error": None,
                }
            )
        )
    if rejected:
        frames.append(
            pd.DataFrame(
                {
                    "split": [r.split for r in rejected],
                    "index": -1,
                    "label": [r.label for r in rejected],
                    "source": [r.path for r in rejected],
                    "error": [r.reason for r in rejected],
                }
            )
        )
    table = pd.concat(frames, ignore_index=True).reindex(columns=list(MANIFEST_COLUMNS))
    return table.astype({"source": "object", "error": "object", "sha256": "object"})


def write_prepared(
    tmp: Path,
    splits: dict[str, Rows],
    class_names: tuple[str, ...],
    rejected: tuple[Rejected, ...] = (),
    skipped: tuple[Rejected, ...] = (),
) -> None:
    """Every file of a prepared dataset, into the (new) folder `tmp`."""
    written = {name: write_split(tmp / name, rows) for name, rows in splits.items()}
    (tmp / "classes.json").write_text(json.dumps(list(class_names)))
    manifest(written, rejected).to_parquet(tmp / "manifest.parquet", index=False)
    if skipped:
        listed = [dataclasses.asdict(r) for r in skipped]
        (tmp / "skipped.json").write_text(json.dumps(listed, indent=2))


def save_prepared(prepared: Prepared, root: str | Path) -> Path:
    """Write the prepared dataset atomically: a reader sees the old one or the complete new one."""
    with atomic_path(root, tree=True) as tmp:
        splits = {
            name: Rows(split.images, np.arange(len(split.labels)), split.labels, split.paths)
            for name, split in prepared.splits().items()
        }
        write_prepared(tmp, splits, prepared.class_names, prepared.rejected, prepared.skipped)
    return Path(root)


SCRATCH = ".scratch"  # inside the temporary output: decoded or converted images, then removed


def prepare(
    root: str | Path,
    load: Callable[[Path], Source],
    test_fraction: float,
    seed: int,
    fraction: float = 1.0,
    max_per_class: int | None = None,
    skip_corrupt: bool = False,
) -> Prepared:
    """Load a source, split it and write it to `root`, streaming: `load(scratch)` may leave its
    images in files under `scratch` (a folder inside the temporary output, removed before the
    rename), and every split is gathered from them chunk by chunk, so memory does not grow
    with the dataset. Atomic as `save_prepared`; returns the written dataset, memory-mapped,
    with the files that did not decode (`rejected`, or `skipped` with `skip_corrupt`)."""
    with atomic_path(root, tree=True) as tmp:
        source = load(tmp / SCRATCH)
        parts = split_indices(source, test_fraction, seed, fraction, max_per_class)
        splits = {
            name: Rows(
                source.images,
                idx,
                source.labels[idx],
                None if source.paths is None else source.paths[idx],
            )
            for name, idx in parts.items()
        }
        rejected, skipped = ((), source.rejected) if skip_corrupt else (source.rejected, ())
        write_prepared(tmp, splits, source.class_names, rejected, skipped)
        del source, splits  # the scratch files' maps, before they are removed
        shutil.rmtree(tmp / SCRATCH, ignore_errors=True)
    return dataclasses.replace(load_prepared(root), rejected=rejected, skipped=skipped)


def load_prepared(root: str | Path, mmap: bool = True) -> Prepared:
    """Read a prepared dataset; images are memory-mapped unless `mmap` is False. A file that is
    truncated, damaged or does not fit the others is a PipelineError naming it."""
    root = Path(root)
    if not (root / "classes.json").is_file():
        raise NotFound(f"{root}: no prepared dataset here", about=ABOUT)
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
    return Damaged(f"{path}: damaged prepared data ({reason})", about=ABOUT)


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
        raise Damaged(f"{path}: manifest missing", about=ABOUT)
    return _read(path, pd.read_parquet)  # pyarrow's errors are OSError or ValueError


def _mapping(images: np.ndarray) -> mmap.mmap | None:
    """The mmap under a memory-mapped array (following views), or None."""
    mapping = images
    while mapping is not None and not isinstance(mapping, mmap.mmap):
        mapping = getattr(mapping, "base", None)
    return mapping if hasattr(mmap, "MADV_DONTNEED") else None


def release(images: np.ndarray) -> None:
    """Drop the pages of a memory-mapped array from this process (MADV_DONTNEED); the kernel's
    page cache keeps the data, written pages included (maps of files are shared)."""
    mapping = _mapping(images)
    if mapping is not None:
        mapping.madvise(mmap.MADV_DONTNEED)


def read_rows(images: np.ndarray, index, chunk: int = 16) -> np.ndarray:
    """A copy of rows `index` (a slice or index array) of a possibly memory-mapped array.

    Reading a mapped file leaves its pages mapped into this process, so over an epoch the
    process would grow by the whole dataset; and a single page fault maps a whole large folio of
    the page cache (~0.3 MB here), so even one random batch of 512 rows briefly mapped ~150 MB.
    Rows are therefore copied `chunk` at a time and the mapping's pages dropped after each
    (MADV_DONTNEED): memory stays flat, and the kernel's page cache keeps the data."""
    mapping = _mapping(images)
    if mapping is None:
        return np.array(images[index], copy=True)
    rows = np.arange(len(images))[index] if isinstance(index, slice) else np.asarray(index)
    out = np.empty((len(rows), *images.shape[1:]), dtype=images.dtype)
    for i in range(0, len(rows), chunk):
        out[i : i + chunk] = images[rows[i : i + chunk]]
        mapping.madvise(mmap.MADV_DONTNEED)
    return out

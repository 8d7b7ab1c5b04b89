"""The prepared format: per split uint8 NHWC images and int labels as .npy (memory-mappable),
class names, and a manifest with one row per image.

    <root>/train/images.npy  <root>/train/labels.npy
    <root>/test/images.npy   <root>/test/labels.npy
    <root>/classes.json      <root>/manifest.parquet
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from sklearn.model_selection import train_test_split

from simclr.data.embedded import Source
from simclr.errors import PipelineError
from simclr.io import atomic_path

SPLITS = ("train", "test")


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,)


@dataclass(frozen=True)
class Prepared:
    train: Split
    test: Split
    class_names: tuple[str, ...]


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """Resize uint8 NHWC images to size x size (bilinear, antialiased when shrinking)."""
    if images.shape[1:3] == (size, size):
        return images
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    y = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def cap_per_class(labels: np.ndarray, max_per_class: int | None, seed: int) -> np.ndarray:
    """Indices keeping at most `max_per_class` images of each class, chosen with `seed`."""
    if max_per_class is None:
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    keep = [
        rng.permutation(np.flatnonzero(labels == c))[:max_per_class] for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(keep))


def split_source(
    source: Source, size: int, test_fraction: float, seed: int, max_per_class: int | None = None
) -> Prepared:
    """Seeded, stratified train/test split at a common image size.

    Sources sorted by class are shuffled by the split itself (train_test_split shuffles).
    """
    images, labels = resize(source.images, size), source.labels
    if source.split is not None:
        parts = {}
        for name in SPLITS:
            idx = np.flatnonzero(source.split == name)
            idx = idx[cap_per_class(labels[idx], max_per_class, seed)]
            idx = np.random.default_rng(seed).permutation(idx)
            parts[name] = Split(images[idx], labels[idx])
        return Prepared(parts["train"], parts["test"], source.class_names)
    idx = cap_per_class(labels, max_per_class, seed)
    train_idx, test_idx = train_test_split(
        idx, test_size=test_fraction, stratify=labels[idx], random_state=seed, shuffle=True
    )
    return Prepared(
        Split(images[train_idx], labels[train_idx]),
        Split(images[test_idx], labels[test_idx]),
        source.class_names,
    )


def manifest(prepared: Prepared) -> pd.DataFrame:
    """One row per image: split, index, label, shape, pixel mean/std, sha256 of the pixels."""
    rows = []
    for name in SPLITS:
        split = getattr(prepared, name)
        flat = split.images.reshape(len(split.images), -1).astype(np.float64)
        for i, img in enumerate(split.images):
            h, w, c = img.shape
            rows.append(
                {
                    "split": name,
                    "index": i,
                    "label": int(split.labels[i]),
                    "height": h,
                    "width": w,
                    "channels": c,
                    "pixel_mean": float(flat[i].mean()),
                    "pixel_std": float(flat[i].std()),
                    "sha256": hashlib.sha256(np.ascontiguousarray(img).tobytes()).hexdigest(),
                }
            )
    return pd.DataFrame(rows)


def save_prepared(prepared: Prepared, root: str | Path) -> Path:
    """Write the prepared dataset atomically: a reader sees the old one or the complete new one."""
    with atomic_path(root) as tmp:
        for name in SPLITS:
            split = getattr(prepared, name)
            (tmp / name).mkdir(parents=True)
            np.save(tmp / name / "images.npy", split.images)
            np.save(tmp / name / "labels.npy", split.labels)
        (tmp / "classes.json").write_text(json.dumps(list(prepared.class_names)))
        manifest(prepared).to_parquet(tmp / "manifest.parquet", index=False)
    return Path(root)


def load_prepared(root: str | Path, mmap: bool = True) -> Prepared:
    """Read a prepared dataset; images are memory-mapped unless `mmap` is False."""
    root = Path(root)
    if not (root / "classes.json").is_file():
        raise PipelineError(
            f"{root}: no prepared dataset here; run `dvc repro` (or the prepare stage) first"
        )
    mode = "r" if mmap else None
    splits = {
        name: Split(
            np.load(root / name / "images.npy", mmap_mode=mode),
            np.load(root / name / "labels.npy"),
        )
        for name in SPLITS
    }
    names = tuple(json.loads((root / "classes.json").read_text()))
    return Prepared(splits["train"], splits["test"], names)


def load_manifest(root: str | Path) -> pd.DataFrame:
    path = Path(root) / "manifest.parquet"
    if not path.is_file():
        raise PipelineError(f"{path}: manifest missing; re-run the prepare stage for this dataset")
    return pd.read_parquet(path)

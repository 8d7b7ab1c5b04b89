"""CIFAR-10, CIFAR-100 and STL-10 through torchvision, from a local root.

torchvision checks every file against its published md5; nothing is downloaded unless the
caller asks for it.
"""

from __future__ import annotations

import urllib.error
from pathlib import Path

import numpy as np

from simclr.data.source import UNLABELED, Source
from simclr.errors import PipelineError

NAMES = {"cifar10": "CIFAR-10", "cifar100": "CIFAR-100", "stl10": "STL-10"}
FOLDERS = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python", "stl10": "stl10_binary"}


def _open(dataset_cls, name: str, root: Path, download: bool, **kwargs):
    existed = root.exists()
    try:
        return dataset_cls(str(root), download=download, **kwargs)
    except RuntimeError as e:
        if "not found or corrupted" not in str(e):
            raise
        raise PipelineError(
            f"{root}: {NAMES[name]} not found or incomplete (torchvision expects "
            f"{root}/{FOLDERS[name]}/, every file matching its md5); extract the archive there",
            about="archive",
        ) from None
    except (urllib.error.URLError, OSError) as e:
        if not download:
            raise
        if not existed and root.is_dir() and not any(root.rglob("*")):
            root.rmdir()  # torchvision made it for the download; leave no empty folder behind
        reason = getattr(e, "reason", None) or e
        raise PipelineError(
            f"downloading {NAMES[name]} into {root} failed ({reason}); this machine may have no "
            f"network: download it elsewhere, extract it into {root} and set download: false"
        ) from None


def load_cifar(name: str, root: str | Path, download: bool = False) -> Source:
    """CIFAR-10 or CIFAR-100 (fine labels): 50,000 train + 10,000 test 32x32 RGB images."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = {"cifar10": CIFAR10, "cifar100": CIFAR100}[name]
    root = Path(root)
    parts = [_open(cls, name, root, download, train=train) for train in (True, False)]
    return Source(
        images=np.concatenate([p.data for p in parts]),
        labels=np.concatenate([np.asarray(p.targets, dtype=np.int64) for p in parts]),
        class_names=tuple(parts[0].classes),
        split=np.repeat(np.array(["train", "test"]), [len(p.data) for p in parts]),
    )


def load_stl10(root: str | Path, download: bool = False, unlabeled: bool = False) -> Source:
    """STL-10: 5,000 train + 8,000 test labelled 96x96 RGB images, and with `unlabeled` the
    100,000 unlabelled images (the split SimCLR pretrains on)."""
    from torchvision.datasets import STL10

    root = Path(root)
    splits = ("train", "test", "unlabeled") if unlabeled else ("train", "test")
    parts = [_open(STL10, "stl10", root, download, split=s) for s in splits]
    labels = [
        np.full(len(p.data), UNLABELED) if s == "unlabeled" else p.labels.astype(np.int64)
        for s, p in zip(splits, parts, strict=True)
    ]
    return Source(
        images=np.concatenate([p.data.transpose(0, 2, 3, 1) for p in parts]),  # NCHW -> NHWC
        labels=np.concatenate(labels).astype(np.int64),
        # torchvision sets classes only when class_names.txt is there.
        class_names=tuple(getattr(parts[0], "classes", None) or (str(i) for i in range(10))),
        split=np.repeat(np.array(splits), [len(p.data) for p in parts]),
    )

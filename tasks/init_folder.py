"""`simclr init`'s look at an image folder: classes, images per class, and the size and colour of
a sample of files read from their headers (Pillow's `Image.open` parses the header; nothing is
decoded), so that a folder of a million photos is looked at in about a second."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

from PIL import Image

from simclr.data.imagefolder import scan
from simclr.errors import PipelineError

SAMPLE = 64  # files whose headers are read, spread over the classes
# Pillow modes without colour: 1-bit, 8-bit and 16/32-bit integer grayscale, with or without alpha.
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"})


@dataclass(frozen=True)
class Folder:
    """What `survey` saw: every class and its count, and the headers of the sample."""

    root: Path
    classes: list[str]
    counts: list[int]  # images per class, in `classes` order
    sizes: list[tuple[int, int]]  # (width, height) of each sampled file that opened
    modes: list[str]  # Pillow mode of each sampled file that opened
    unreadable: int  # sampled files whose header Pillow could not parse

    @property
    def images(self) -> int:
        return sum(self.counts)

    @property
    def colour(self) -> bool:
        return any(m not in GRAY_MODES for m in self.modes)

    @property
    def typical_side(self) -> int:
        """The sample's median shorter side: what a square resize can keep without upscaling."""
        return int(statistics.median(min(w, h) for w, h in self.sizes))

    @property
    def aspect_spread(self) -> float:
        """Widest over narrowest aspect ratio (width / height) in the sample; 1.0 = all alike."""
        ratios = [w / h for w, h in self.sizes]
        return max(ratios) / min(ratios)


def _spread(paths: list[str], labels: list[int], n: int) -> list[str]:
    """Up to `n` paths spread over the classes: evenly spaced within each class, taken class by
    class in turn, so that a few large classes do not fill the sample."""
    by_class: dict[int, list[str]] = {}
    for path, label in zip(paths, labels, strict=True):
        by_class.setdefault(label, []).append(path)
    share = -(-n // len(by_class))  # per class, rounded up
    columns = [files[:: max(1, len(files) // share)][:share] for files in by_class.values()]
    return [p for row in zip_longest(*columns) for p in row if p is not None][:n]


def _header(path: Path) -> tuple[tuple[int, int], str] | None:
    """(size, mode) from the file's header, upright (EXIF orientations 5-8 swap the sides);
    None where Pillow cannot parse it."""
    try:
        with Image.open(path) as img:
            (w, h), mode = img.size, img.mode
            if img.getexif().get(0x0112, 1) in (5, 6, 7, 8):
                w, h = h, w
            return (w, h), mode
    except MemoryError:
        raise
    except Exception:  # what Pillow raises for a file it cannot read varies by plugin
        return None


def survey(root: str | Path, sample: int = SAMPLE) -> Folder:
    """Classes and counts of `root`/<class>/<images> (simclr.data.imagefolder.scan, so the
    layout rules are the prepare stage's), and the headers of `sample` files spread over the
    classes. Raises PipelineError for a class too small to split and for a sample of which no
    file opens."""
    root = Path(root).expanduser().resolve()
    classes, paths, labels = scan(root)
    counts = [0] * len(classes)
    for label in labels:
        counts[label] += 1
    small = [c for c, n in zip(classes, counts, strict=True) if n < 2]
    if small:
        raise PipelineError(
            f"{root / small[0]}: class has 1 image ({len(small)} such classes); every class "
            "needs at least 2 (a train/test split, validate.min_per_class); add images or "
            "remove the class"
        )
    headers = [_header(root / p) for p in _spread(paths, labels, sample)]
    opened = [h for h in headers if h is not None]
    if not opened:
        raise PipelineError(
            f"{root}: none of the {len(headers)} sampled files opens as an image (e.g. "
            f"{root / _spread(paths, labels, 1)[0]}); check that the folder holds images"
        )
    sizes, modes = [s for s, _ in opened], [m for _, m in opened]
    return Folder(root, classes, counts, sizes, modes, len(headers) - len(opened))


def check_test_classes(train: Folder, test: Folder) -> None:
    """The test folder must hold the training folder's classes: labels index the class names."""
    if train.classes != test.classes:
        only_train = sorted(set(train.classes) - set(test.classes))
        only_test = sorted(set(test.classes) - set(train.classes))
        parts = [f"{len(only_train)} only in train (e.g. {only_train[0]!r})"] if only_train else []
        parts += [f"{len(only_test)} only in test (e.g. {only_test[0]!r})"] if only_test else []
        raise PipelineError(
            f"{test.root}: its classes differ from {train.root}'s: {', '.join(parts)}; give both "
            "folders the same class subfolders"
        )

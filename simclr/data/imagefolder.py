"""Image folders in the layout users bring: ``root/<class>/<image files>``.

`load_image_folder` decodes every image Pillow can read into one uint8 NHWC array, with labels
indexing the class folder names. Classes and files are taken in sorted name order, so the same
folder gives the same arrays on every machine and with any number of workers.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from simclr.errors import PipelineError
from simclr.progress import track

log = logging.getLogger(__name__)

MODES = {1: "L", 3: "RGB"}
# Modes that Pillow converts to L and RGB faithfully; 16- and 32-bit integer ("I*") are scaled
# by _to_8bit. Others (32-bit float "F", "LAB", "HSV") have no one right mapping to 8-bit
# pixels, or none in Pillow, so they are refused rather than read as wrong colours.
CONVERTIBLE = frozenset(
    {"1", "L", "LA", "La", "P", "PA", "RGB", "RGBA", "RGBa", "RGBX", "CMYK", "YCbCr"}
)
MODE_NAMES = {"F": "32-bit floating-point (mode F)", "LAB": "CIELAB", "HSV": "HSV"}
# What Pillow raises for a file it cannot read: wrong format, truncated data, absurd size.
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)
# Images per task: a future per image adds overhead comparable to decoding a 32 px JPEG.
CHUNK = 64


class UndecodableImage(PipelineError):
    """A file Pillow cannot read; `reason` is Pillow's message without the path."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"{path}: cannot decode image ({reason}); replace or delete the file")
        self.reason = reason


@dataclass(frozen=True)
class ImageFolder:
    images: np.ndarray  # uint8 (N, H, W, C)
    labels: np.ndarray  # int64 (N,), index into classes
    classes: list[str]  # class folder names, sorted
    paths: list[str]  # per image, relative to root with "/" separators
    rejected: list[tuple[str, int, str]]  # (path, label, reason) of files that did not decode


def image_extensions() -> frozenset[str]:
    """File suffixes (".jpg", ".png", ...) of every format Pillow can open."""
    # Some registered formats are save-only (e.g. PDF); only those in Image.OPEN can be read.
    return frozenset(e for e, fmt in Image.registered_extensions().items() if fmt in Image.OPEN)


def scan(root: Path) -> tuple[list[str], list[str], list[int]]:
    """Class names, relative image paths and labels, sorted by name; raises on a bad layout."""
    if not root.exists():
        raise PipelineError(f"{root}: image folder not found; check the path")
    if not root.is_dir():
        raise PipelineError(
            f"{root}: not a directory; pass the folder that holds one subfolder per class"
        )
    # Hidden entries (.git, .DS_Store, .ipynb_checkpoints) are never classes or images.
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise PipelineError(
            f"{root}: no class subfolders; put the images in {root}/<class name>/ folders"
        )
    extensions = image_extensions()
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = sorted(
            p.name
            for p in (root / name).iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in extensions
        )
        if not files:
            raise PipelineError(
                f"{root / name}: class folder has no images; add images or remove the folder"
            )
        paths += [f"{name}/{f}" for f in files]
        labels += [label] * len(files)
    return classes, paths, labels


def decode(path: Path, mode: str, size: int | None, policy: str = "stretch") -> np.ndarray:
    """One image file, read by `convert`."""
    try:
        with Image.open(path) as f:
            return convert(f, mode, size, policy, path)
    except DECODE_ERRORS as e:
        raise UndecodableImage(path, " ".join(str(e).split()) or type(e).__name__) from e


def convert(
    img: Image.Image, mode: str, size: int | None, policy: str = "stretch", path: Path | str = ""
) -> np.ndarray:
    """An image, upright per its EXIF orientation, in `mode`, brought to size x size if given:
    `stretch` resizes to the square, `crop` scales the shorter side and centre-crops. `path`
    names it in errors. Raises what Pillow raises for data it cannot read (DECODE_ERRORS)."""
    img = ImageOps.exif_transpose(img)  # cameras store portraits sideways plus a tag
    if not (img.mode in CONVERTIBLE or img.mode.startswith("I")):
        raise UndecodableImage(
            path,
            f"{MODE_NAMES.get(img.mode, img.mode)} images are not supported; "
            "save it as 8- or 16-bit grayscale, RGB, RGBA or CMYK",
        )
    if img.mode.startswith("I"):
        img = _to_8bit(img)
    if img.mode != mode:
        # Palette, alpha (dropped) and CMYK images convert as Pillow defines.
        img = img.convert(mode)
    if size is not None and img.size != (size, size):
        # Pillow's bilinear filter widens its support when shrinking: antialiased.
        if policy == "crop":
            img = ImageOps.fit(img, (size, size), Image.Resampling.BILINEAR)
        else:
            img = img.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(img)


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit grayscale ("I;16*", or "I" holding 0..65535) to 8-bit "L" by scaling, not clipping:
    Pillow's convert("L") clips every value above 255 to white."""
    x = np.asarray(img, dtype=np.float64).clip(0, 65535)
    return Image.fromarray(np.rint(x / 257).astype(np.uint8), "L")


def _check_options(image_size: int | None, channels: int, workers: int | None, resize: str) -> int:
    """The number of decoding threads; a one-line error for an option out of range."""
    if resize not in ("stretch", "crop"):
        raise PipelineError(f"resize={resize!r}: must be stretch or crop")
    if channels not in MODES:
        raise PipelineError(f"channels={channels}: must be 1 (grayscale) or 3 (RGB)")
    if image_size is not None and image_size < 1:
        raise PipelineError(f"image_size={image_size}: must be a positive number of pixels")
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise PipelineError(f"workers={workers}: must be at least 1")
    return workers


def _in_chunks(fill: Callable[[range], None], start: int, n: int, workers: int) -> None:
    """`fill` over the indices start..n-1 in chunks of CHUNK, on `workers` threads."""
    chunks = [range(i, min(i + CHUNK, n)) for i in range(start, n, CHUNK)]
    if workers == 1:
        for chunk in track(chunks, "decoding", CHUNK, n - start):
            fill(chunk)
        return
    # Threads share the arrays without copies; Pillow releases the GIL while decoding and
    # resizing, so they pay off as images grow (tiny images are bound by Python overhead).
    with ThreadPoolExecutor(workers) as pool:
        # map yields in order, so the error raised is the one for the first bad file.
        for _ in track(pool.map(fill, chunks), "decoding", CHUNK, n - start):
            pass


def _without_failed(folder: ImageFolder, failed: dict[int, str]) -> ImageFolder:
    """`folder` without the images that did not decode, listed in `rejected` with the reason."""
    if not failed:
        return folder
    rejected = [(folder.paths[i], int(folder.labels[i]), failed[i]) for i in sorted(failed)]
    keep = np.setdiff1d(np.arange(len(folder.labels)), sorted(failed))
    paths = [folder.paths[i] for i in keep]
    return ImageFolder(folder.images[keep], folder.labels[keep], folder.classes, paths, rejected)


def load_image_folder(
    root: str | Path,
    image_size: int | None = None,
    channels: int = 3,
    workers: int | None = None,
    resize: str = "stretch",
    strict: bool = True,
) -> ImageFolder:
    """Decode every image under ``root/<class>/`` into uint8 (N, H, W, channels) arrays.

    With `image_size`, each image is brought to image_size x image_size (`resize`: stretch or
    crop); without it, all images must already share one size. `channels` is 1 (grayscale) or
    3 (RGB); images are converted as needed. Decoding runs on `workers` threads (default: one
    per CPU). A file that does not decode raises, or with `strict=False` is left out and listed
    in `rejected`.
    """
    workers = _check_options(image_size, channels, workers, resize)
    root = Path(root)
    start = time.perf_counter()
    classes, paths, labels = scan(root)
    mode = MODES[channels]
    failed: dict[int, str] = {}  # index -> reason, filled by the workers

    def attempt(i: int) -> np.ndarray | None:
        try:
            return decode(root / paths[i], mode, image_size, resize)
        except UndecodableImage as e:
            if strict:
                raise
            failed[i] = e.reason
            return None

    # The first decodable image fixes the output shape, so the others are written straight into
    # one preallocated array instead of being stacked (which would need twice the memory).
    first, start_at = None, 0
    while first is None and start_at < len(paths):
        first, start_at = attempt(start_at), start_at + 1
    if first is None:
        raise PipelineError(f"{root}: none of the {len(paths)} image files could be decoded")
    h, w = first.shape[:2]
    images = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    images[start_at - 1] = first.reshape(h, w, channels)

    def fill(indices: range) -> None:
        for i in indices:
            img = attempt(i)
            if img is None:
                continue
            if img.shape[:2] != (h, w):
                raise PipelineError(
                    f"{root / paths[i]}: image is {img.shape[1]}x{img.shape[0]} but "
                    f"{root / paths[start_at - 1]} is {w}x{h}; pass image_size to resize all images"
                )
            images[i] = img.reshape(h, w, channels)

    n = len(paths)
    _in_chunks(fill, start_at, n, workers)
    folder = ImageFolder(images, np.array(labels, dtype=np.int64), classes, paths, [])
    folder = _without_failed(folder, failed)
    seconds = time.perf_counter() - start
    log.info(
        "%s: %d images of %d classes in %.1f s (%.0f images/s)",
        root,
        n,
        len(classes),
        seconds,
        n / max(seconds, 1e-9),
    )
    return folder

"""Image folders in the layout users bring: ``root/<class>/<image files>``.

`load_image_folder` decodes every image Pillow can read into one uint8 NHWC array (in memory, or
appended to a file chunk by chunk), with labels indexing the class folder names. Classes and
files are taken in sorted name order, so the same folder gives the same arrays on every machine
and with any number of workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
import warnings
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from simclr.errors import MAX_VALUE, PipelineError, single_line
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
AHEAD = 4  # chunks in flight per worker: the workers stay busy, memory holds only these
PROCESSES_FROM = 4096  # files from which decoding runs in processes rather than threads


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
    """Class names, relative image paths and labels, sorted by name; raises on a bad layout.

    A class is a folder directly under `root`; its images are the image files anywhere below it
    (`cat/2019/x.jpg` is a cat), so that no image is silently left out. An image beside the
    class folders belongs to no class and is refused, as are names that are not UTF-8."""
    try:
        classes, paths, labels = _listing(root)
    except OSError as e:
        where = e.filename if e.filename is not None else root
        what = e.strerror or type(e).__name__
        # from e: the command line adds what to do about the OS error (flows/errors.py)
        raise PipelineError(f"{root}: cannot list the image folder: {what} ({where})") from e
    _check_names(root, [*classes, *paths])
    return classes, paths, labels


def _listing(root: Path) -> tuple[list[str], list[str], list[int]]:
    if not root.exists():
        raise PipelineError(f"{root}: image folder not found; check the path")
    if not root.is_dir():
        raise PipelineError(
            f"{root}: not a directory; pass the folder that holds one subfolder per class"
        )
    extensions = image_extensions()
    # Hidden entries (.git, .DS_Store, .ipynb_checkpoints) are never classes or images.
    entries = sorted((e for e in os.scandir(root) if not e.name.startswith(".")), key=_name)
    classes = [e.name for e in entries if e.is_dir()]
    if not classes:
        raise PipelineError(
            f"{root}: no class subfolders; put the images in {root}/<class name>/ folders"
        )
    loose = [e.name for e in entries if e.is_file() and _is_image(e.name, extensions)]
    if loose:
        raise PipelineError(
            f"{root}: {len(loose)} image files lie beside the class folders and belong to no "
            f"class (e.g. {root / loose[0]}); move them into a class folder or delete them"
        )
    paths, labels = [], []
    for label, name in enumerate(classes):
        files = _images_below(root / name, extensions)
        if not files:
            raise PipelineError(
                f"{root / name}: class folder has no images; add images or remove the folder"
            )
        paths += [f"{name}/{f}" for f in files]
        labels += [label] * len(files)
    return classes, paths, labels


def _name(entry: os.DirEntry) -> str:
    return entry.name


def _is_image(name: str, extensions: frozenset[str]) -> bool:
    return not name.startswith(".") and os.path.splitext(name)[1].lower() in extensions


def _raise(error: OSError) -> None:
    raise error


def _images_below(folder: Path, extensions: frozenset[str]) -> list[str]:
    """Image files anywhere below `folder` (symbolic links followed, each folder once, hidden
    ones skipped), as sorted paths relative to it with "/" separators. Only regular files: a
    FIFO or device named x.jpg would block or never end."""
    found, seen = [], set()
    for top, dirs, files in os.walk(folder, followlinks=True, onerror=_raise):
        st = os.stat(top)
        if (st.st_dev, st.st_ino) in seen:  # a link back to a folder already read
            dirs.clear()
            continue
        seen.add((st.st_dev, st.st_ino))
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(top).relative_to(folder)
        found += [
            (rel / f).as_posix()
            for f in files
            if _is_image(f, extensions) and os.path.isfile(os.path.join(top, f))
        ]
    return sorted(found)


def _check_names(root: Path, names: list[str]) -> None:
    """Refuse names that are not UTF-8 (bytes the file system holds, e.g. Latin-1): they cannot
    be written to the manifest, the metrics or the report."""
    bad = []
    for name in names:
        try:
            name.encode("utf-8")
        except UnicodeEncodeError:
            bad.append(os.fsencode(root / name).decode("utf-8", "backslashreplace"))
    if bad:
        raise PipelineError(
            f"{root}: {len(bad)} file or folder names are not UTF-8 (e.g. {bad[0]}); rename "
            f"them to UTF-8 (e.g. convmv -r -f latin1 -t utf8 --notest {root})"
        )


def decode(path: Path, mode: str, size: int | None, policy: str = "stretch") -> np.ndarray:
    """One image file, read by `_open` and brought to `mode` and size by `convert`."""
    return convert(_open(path), mode, size, policy, path)


def convert(
    img: Image.Image, mode: str, size: int | None, policy: str = "stretch", path: Path | str = ""
) -> np.ndarray:
    """An image (already upright) in `mode`, brought to size x size if given: `stretch` resizes
    to the square, `crop` scales the shorter side and centre-crops. `path` names it in errors."""
    if not (img.mode in CONVERTIBLE or img.mode.startswith("I")):
        raise UndecodableImage(
            path,
            f"{MODE_NAMES.get(img.mode, img.mode)} images are not supported; "
            "save it as 8- or 16-bit grayscale, RGB, RGBA or CMYK",
        )
    try:
        if img.mode.startswith("I"):
            img = _to_8bit(path, img)
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
    except DECODE_ERRORS as e:
        raise UndecodableImage(path, _reason(e)) from e


def _reason(e: BaseException) -> str:
    return single_line(" ".join(str(e).split()), MAX_VALUE) or type(e).__name__


def _open(path: Path) -> Image.Image:
    """The file's pixels, decoded and upright. Whatever Pillow raises while it parses and
    decodes the file means the file cannot be read: its plugins raise OSError and SyntaxError,
    but for damaged files of some formats also NotImplementedError (DDS), struct.error,
    IndexError, KeyError, TypeError, ZeroDivisionError, EOFError... Memory is not the file's
    fault and propagates (as does Ctrl-C, not an Exception)."""
    _quiet_large_images()
    try:
        with Image.open(path) as f:
            f.load()
            return ImageOps.exif_transpose(f)  # cameras store portraits sideways plus a tag
    except MemoryError:
        raise
    except Exception as e:
        raise UndecodableImage(path, _reason(e)) from e


def _quiet_large_images() -> None:
    """Pillow warns, in two lines, of a possible decompression bomb above MAX_IMAGE_PIXELS
    (89 MP) and refuses twice that with DecompressionBombError, which `_open` makes a one-line
    UndecodableImage. In between lie real photographs (a 100 MP camera): they are decoded like
    any other, without the scare. A filter of this one category for the process, not
    catch_warnings around the call, which is not thread-safe and files decode in threads; set
    again at each file, in front, as a caller's catch_warnings may have dropped it."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def _to_8bit(path: Path, img: Image.Image) -> Image.Image:
    """16-bit grayscale ("I;16*", or "I" holding 0..65535) to 8-bit "L" by scaling, not clipping:
    Pillow's convert("L") clips every value above 255 to white. Values beyond 16 bits (a 32-bit
    integer TIFF) have no one right 8-bit form: such an image is refused, naming its range."""
    x = np.asarray(img, dtype=np.int64)
    low, high = (int(x.min()), int(x.max())) if x.size else (0, 0)
    if low < 0 or high > 65535:
        raise UndecodableImage(
            path,
            f"32-bit integer (mode {img.mode}) image with values {low}..{high}, beyond 16 bits, "
            "is not supported; save it as 8- or 16-bit grayscale",
        )
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


def _decode_chunk(
    root: Path, paths: list[str], mode: str, size: int | None, policy: str
) -> list[np.ndarray | str]:
    """Each file decoded, or the reason it could not be (a string): failures come back as
    values, so that the caller raises the first one in file order, and a worker process never
    has to pickle an exception."""
    out: list[np.ndarray | str] = []
    for p in paths:
        try:
            out.append(decode(root / p, mode, size, policy))
        except UndecodableImage as e:
            out.append(e.reason)
    return out


def _pool(workers: int, files: int) -> Executor:
    """Threads, or spawned processes for large folders: decoding a small image is mostly Python
    work that holds the GIL, so only processes use every core on it; starting them costs a
    second or two (each imports this module and its caller's), paid back past PROCESSES_FROM
    files. Spawned rather than forked: the stage runs beside Prefect's threads."""
    if files >= PROCESSES_FROM:
        return ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
    return ThreadPoolExecutor(workers)


def _decoded(
    root: Path, paths: list[str], mode: str, size: int | None, policy: str, workers: int
) -> Iterator[tuple[range, list[np.ndarray | str]]]:
    """(indices, images or failure reasons) of every CHUNK of files, in file order, decoded on
    `workers` threads or processes with at most AHEAD chunks per worker in flight, so that
    memory holds a few chunks, never the folder."""
    chunks = (range(i, min(i + CHUNK, len(paths))) for i in range(0, len(paths), CHUNK))
    if workers == 1:
        for r in chunks:
            yield r, _decode_chunk(root, paths[r.start : r.stop], mode, size, policy)
        return
    pool = _pool(workers, len(paths))
    pending: deque = deque()
    try:
        for r in chunks:
            work = (root, paths[r.start : r.stop], mode, size, policy)
            pending.append((r, pool.submit(_decode_chunk, *work)))
            while len(pending) >= AHEAD * workers:
                done, future = pending.popleft()
                yield done, future.result()
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def load_image_folder(
    root: str | Path,
    image_size: int | None = None,
    channels: int = 3,
    workers: int | None = None,
    resize: str = "stretch",
    strict: bool = True,
    out: Path | None = None,
) -> ImageFolder:
    """Decode every image under ``root/<class>/`` into uint8 (N, H, W, channels) arrays.

    With `image_size`, each image is brought to image_size x image_size (`resize`: stretch or
    crop); without it, all images must already share one size. `channels` is 1 (grayscale) or
    3 (RGB); images are converted as needed. Decoding runs on `workers` threads or processes
    (default: one per CPU), a few chunks at a time. A file that does not decode raises, or with
    `strict=False` is left out and listed in `rejected`. With `out`, the images are appended to
    that file (raw rows, no header) as they are decoded and `images` maps them from it, so the
    folder never has to fit in memory; without it they are held in memory.
    """
    workers = _check_options(image_size, channels, workers, resize)
    root = Path(root)
    start = time.perf_counter()
    classes, paths, labels = scan(root)
    mode = MODES[channels]
    rows = _Rows(out, len(paths), channels)
    kept = np.ones(len(paths), dtype=bool)  # a flag per file, not a Python int per image
    rejected: list[tuple[str, int, str]] = []
    decoded = _decoded(root, paths, mode, image_size, resize, workers)
    for indices, results in track(decoded, "decoding", CHUNK, len(paths)):
        for i, img in zip(indices, results, strict=True):
            if isinstance(img, str):
                if strict:
                    raise UndecodableImage(root / paths[i], img)
                rejected.append((paths[i], labels[i], img))
                kept[i] = False
                continue
            rows.append(img, root / paths[i])
    images = rows.close()
    if not rows.n:
        raise PipelineError(f"{root}: none of the {len(paths)} image files could be decoded")
    seconds = time.perf_counter() - start
    log.info(
        "%s: %d images of %d classes in %.1f s (%.0f images/s)",
        root,
        len(paths),
        len(classes),
        seconds,
        len(paths) / max(seconds, 1e-9),
    )
    if rejected:  # else the listing is the kept list as it is
        paths = [p for p, k in zip(paths, kept, strict=True) if k]
    return ImageFolder(images, np.array(labels, dtype=np.int64)[kept], classes, paths, rejected)


class _Rows:
    """Where decoded images go, in order: an array allocated at the first image's size, or the
    end of the file `out` (written, never mapped, while decoding). The first image fixes the
    size; another size is a one-line error naming both files."""

    def __init__(self, out: Path | None, capacity: int, channels: int):
        self.out, self.capacity, self.channels = out, capacity, channels
        self.file = open(out, "ab") if out is not None else None  # noqa: SIM115 (closed in close)
        self.offset = out.stat().st_size if out is not None else 0
        self.array: np.ndarray | None = None
        self.first: Path | None = None
        self.shape: tuple[int, int] = (0, 0)
        self.n = 0

    def append(self, img: np.ndarray, path: Path) -> None:
        if self.first is None:
            self.first, self.shape = path, img.shape[:2]
            if self.file is None:
                self.array = np.empty((self.capacity, *self.shape, self.channels), np.uint8)
        elif img.shape[:2] != self.shape:
            h, w = self.shape
            raise PipelineError(
                f"{path}: image is {img.shape[1]}x{img.shape[0]} but {self.first} is {w}x{h}; "
                "pass image_size to resize all images"
            )
        if self.file is not None:
            self.file.write(np.ascontiguousarray(img).tobytes())
        else:
            self.array[self.n] = img.reshape(*self.shape, self.channels)
        self.n += 1

    def close(self) -> np.ndarray:
        """The images: the array's filled rows, or a read-only map of the rows written."""
        shape = (self.n, *self.shape, self.channels)
        if self.file is not None:
            self.file.close()
        if not self.n:
            return np.empty(shape, np.uint8)
        if self.file is None:
            return self.array[: self.n]
        return np.memmap(self.out, np.uint8, "r", self.offset, shape)

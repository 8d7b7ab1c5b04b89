"""Images and labels from a NumPy .npz file.

Either `x_train`, `y_train`, `x_test`, `y_test` (the split is the file's) or `images` and
`labels` (the pipeline splits them); optionally `class_names`. Images are uint8, (N, H, W) or
(N, H, W, C) with C = 1 or 3; labels are integers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from simclr.data.prepared import read_rows, release
from simclr.data.source import CHUNK, Source
from simclr.errors import PipelineError

LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("images", "labels"))


def load_npz(path: str | Path, scratch: Path | None = None) -> Source:
    """The arrays of an .npz file. With `scratch` (a directory), arrays stored uncompressed
    (np.savez) are memory-mapped in place rather than read, and a train and a test array are
    joined chunk by chunk into a file there, so memory does not grow with the file; compressed
    ones (np.savez_compressed) cannot be mapped and are read."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: .npz file not found; check datasets.<name>.path")
    try:
        arrays = _read_npz(path, mmap=scratch is not None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise PipelineError(f"{path}: not a readable .npz file ({e})") from None
    layout = next((keys for keys in LAYOUTS if set(keys) <= set(arrays)), None)
    if layout is None:
        raise PipelineError(
            f"{path}: holds {sorted(arrays)}; expected x_train, y_train, x_test, y_test "
            "or images, labels"
        )
    pairs = [(layout[i], layout[i + 1]) for i in range(0, len(layout), 2)]
    images = [_images(path, k, arrays[k]) for k, _ in pairs]
    labels = [_labels(path, k, arrays[k], len(x)) for (_, k), x in zip(pairs, images, strict=True)]
    if len({x.shape[1:] for x in images}) > 1:
        raise PipelineError(f"{path}: x_train and x_test differ in image shape")
    values, label_ids = np.unique(np.concatenate(labels), return_inverse=True)
    if "class_names" in arrays:
        if arrays["class_names"].ndim != 1:
            raise PipelineError(f"{path}: class_names must be a list of names (1-D)")
        names = tuple(str(n) for n in arrays["class_names"])
        if not (len(names) > values.max() and values.min() >= 0):
            raise PipelineError(
                f"{path}: labels run from {values.min()} to {values.max()} but class_names has "
                f"{len(names)} entries"
            )
        label_ids, class_names = np.concatenate(labels), names
    else:
        class_names = tuple(str(v) for v in values)
    split = None
    if len(pairs) == 2:
        split = np.repeat(np.array(["train", "test"]), [len(x) for x in images])
    joined = images[0] if len(images) == 1 else _join(images, scratch)
    return Source(joined, label_ids.astype(np.int64), class_names, split)


def _read_npz(path: Path, mmap: bool) -> dict[str, np.ndarray]:
    loaded = np.load(path, allow_pickle=False)
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load also reads a bare .npy
        raise PipelineError(
            f"{path}: a single array, not an .npz archive; save the images and labels "
            "together: np.savez(path, images=..., labels=...)"
        )
    with loaded as f:
        if not mmap:
            return {k: f[k] for k in f.files}
        with zipfile.ZipFile(path) as z:
            infos = {i.filename.removesuffix(".npy"): i for i in z.infolist()}
        return {k: _mapped(path, infos[k]) if _storable(infos.get(k)) else f[k] for k in f.files}


# The .npy header versions a map can be made from (3.0 only differs for structured dtypes).
HEADER_READERS = {
    (1, 0): np.lib.format.read_array_header_1_0,
    (2, 0): np.lib.format.read_array_header_2_0,
}


def _storable(info: zipfile.ZipInfo | None) -> bool:
    return info is not None and info.compress_type == zipfile.ZIP_STORED


def _mapped(path: Path, info: zipfile.ZipInfo) -> np.ndarray:
    """A read-only memory map of an uncompressed .npy member of the zip file at `path`."""
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local = f.read(30)  # the local file header: its name and extra field lengths at 26, 28
        f.seek(
            info.header_offset
            + 30
            + int.from_bytes(local[26:28], "little")
            + int.from_bytes(local[28:30], "little")
        )
        version = np.lib.format.read_magic(f)
        header = HEADER_READERS[version]
        shape, fortran, dtype = header(f)
        offset = f.tell()
    if dtype.hasobject:
        raise ValueError(f"{info.filename} holds Python objects")
    return np.memmap(path, dtype, "r", offset, shape, "F" if fortran else "C")


def _join(parts: list[np.ndarray], scratch: Path | None) -> np.ndarray:
    """The arrays one after the other: in memory, or written chunk by chunk to `scratch`."""
    if scratch is None:
        return np.concatenate(parts)
    scratch.mkdir(parents=True, exist_ok=True)
    shape = (sum(len(x) for x in parts), *parts[0].shape[1:])
    out = np.lib.format.open_memmap(scratch / "joined.npy", "w+", np.uint8, shape)
    at = 0
    for x in parts:
        for i in range(0, len(x), CHUNK):
            rows = read_rows(x, slice(i, i + CHUNK))
            out[at : at + len(rows)] = rows
            at += len(rows)
            release(out)
    out.flush()
    return np.load(scratch / "joined.npy", mmap_mode="r")


def _images(path: Path, key: str, x: np.ndarray) -> np.ndarray:
    if x.dtype != np.uint8:
        raise PipelineError(
            f"{path}: {key} is {x.dtype}; store images as uint8 0..255 "
            "(for floats in [0, 1]: (x * 255).round().astype(np.uint8))"
        )
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise PipelineError(
            f"{path}: {key} has shape {x.shape}; expected (N, H, W) or (N, H, W, C) with C 1 or 3 "
            "(channels last)"
        )
    if not len(x) or not x.shape[1] or not x.shape[2]:
        raise PipelineError(
            f"{path}: {key} has shape {x.shape}: no images, or images of no pixels; store at "
            "least one image of at least 1x1 pixels"
        )
    return x


def _labels(path: Path, key: str, y: np.ndarray, n: int) -> np.ndarray:
    if y.ndim != 1 or len(y) != n or not np.issubdtype(y.dtype, np.integer):
        raise PipelineError(f"{path}: {key} must be {n} integer labels, got {y.dtype} {y.shape}")
    return y.astype(np.int64)

"""Images and labels from a NumPy .npz file.

Either `x_train`, `y_train`, `x_test`, `y_test` (the split is the file's) or `images` and
`labels` (the pipeline splits them); optionally `class_names`. Images are uint8, (N, H, W) or
(N, H, W, C) with C = 1 or 3; labels are integers.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from simclr.data.source import Source
from simclr.errors import PipelineError

LAYOUTS = (("x_train", "y_train", "x_test", "y_test"), ("images", "labels"))


def load_npz(path: str | Path) -> Source:
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: .npz file not found; check datasets.<name>.path")
    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):  # np.load also reads a bare .npy
            raise PipelineError(
                f"{path}: a single array, not an .npz archive; save the images and labels "
                "together: np.savez(path, images=..., labels=...)"
            )
        with loaded as f:
            arrays = {k: f[k] for k in f.files}
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
    return Source(np.concatenate(images), label_ids.astype(np.int64), class_names, split)


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

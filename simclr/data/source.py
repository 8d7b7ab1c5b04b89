"""What every dataset source returns, and the array conversions all sources share.

A `Source` holds uint8 NHWC images at their final size and channels, int labels (-1 for
unlabelled images), class names, the split where the source fixes it, the file each image came
from where there is one, and the files that could not be decoded.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simclr.errors import PipelineError

SPLITS = ("train", "test", "unlabeled")
UNLABELED = -1
# Images per chunk when resizing arrays: bounds the float32 copy torch needs.
CHUNK = 4096


@dataclass(frozen=True)
class Rejected:
    """A source file that could not be decoded."""

    path: str
    split: str
    label: int
    reason: str


@dataclass(frozen=True)
class Source:
    images: np.ndarray  # uint8, (N, H, W, C)
    labels: np.ndarray  # int64, (N,); UNLABELED (-1) for the unlabelled split
    class_names: tuple[str, ...]
    split: np.ndarray | None = None  # "train"/"test"/"unlabeled" per image, if the source fixes it
    paths: np.ndarray | None = None  # source file per image (str), if images come from files
    rejected: tuple[Rejected, ...] = ()


def to_channels(images: np.ndarray, channels: int | None) -> np.ndarray:
    """uint8 NHWC with 1 or 3 channels converted to `channels` (None keeps them).

    RGB -> grayscale uses ITU-R 601 luma, as Pillow's convert("L") does."""
    have = images.shape[-1]
    if have not in (1, 3):
        raise PipelineError(
            f"images have {have} channels; only 1 (grayscale) or 3 (RGB) are supported"
        )
    if channels is None or channels == have:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    out = np.empty(images.shape[:-1] + (1,), dtype=np.uint8)
    weights = np.array([299, 587, 114], dtype=np.uint32)
    for i in range(0, len(images), CHUNK):
        luma = images[i : i + CHUNK].astype(np.uint32) @ weights
        out[i : i + CHUNK, ..., 0] = ((luma + 500) // 1000).astype(np.uint8)
    return out


def fit_size(images: np.ndarray, size: int, policy: str = "stretch") -> np.ndarray:
    """uint8 NHWC images brought to size x size: `stretch` resizes to the square; `crop` first
    centre-crops the longer side to the shorter, keeping the aspect ratio. Bilinear, antialiased
    when shrinking, in chunks so that memory stays bounded."""
    h, w = images.shape[1:3]
    if policy == "crop" and h != w:
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        images = images[:, top : top + side, left : left + side]
    if images.shape[1:3] == (size, size):
        return np.ascontiguousarray(images)
    import torch  # here, so that reading params (simclr.config) does not import torch
    import torch.nn.functional as F

    out = np.empty((len(images), size, size, images.shape[-1]), dtype=np.uint8)
    for i in range(0, len(images), CHUNK):
        x = torch.from_numpy(np.ascontiguousarray(images[i : i + CHUNK])).permute(0, 3, 1, 2)
        y = F.interpolate(
            x.float(), size=(size, size), mode="bilinear", antialias=True, align_corners=False
        )
        out[i : i + CHUNK] = y.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()
    return out

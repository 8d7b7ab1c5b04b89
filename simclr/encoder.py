"""The pretrained encoder in a user's hands, with the preprocessing it was trained with:

    from simclr import load_encoder
    encoder, preprocess = load_encoder("models/simclr-0.pt")
    h = encoder(preprocess(images))  # a list of PIL images -> (N, dim) float32 tensor

Images go through what the prepare stage does to a file (simclr.data.imagefolder.convert: EXIF
orientation, conversion to the checkpoint's channels, resizing to its image size), then to
floats in [0, 1]; the encoder normalises inside its forward.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

import numpy as np
import torch
from PIL import Image, ImageOps

from simclr import checkpoint
from simclr.config import DataConfig
from simclr.data.imagefolder import MODES, convert, decode
from simclr.device import select_device, to_images
from simclr.errors import PipelineError
from simclr.models import NORMALIZE_MEAN, NORMALIZE_STD, Encoder

RESIZE_POLICIES = get_args(DataConfig.model_fields["resize"].annotation)  # stretch, crop
HOW = "pass a list of PIL images, e.g. [Image.open(path) for path in paths]"
# Iterables that are not batches of images: iterating them would give characters, rows, bytes.
NOT_A_BATCH = (str, bytes, os.PathLike, np.ndarray, torch.Tensor)


def _batch(images) -> list[Image.Image]:
    """`images` as a list of non-empty PIL images, or a one-line PipelineError saying what to
    pass. One image alone is refused, not taken as a batch of one: preprocess always returns a
    batch (N, C, H, W), where a torchvision transform given one image returns (C, H, W)."""
    if isinstance(images, Image.Image):
        raise PipelineError(
            "preprocess: got one PIL image, not a list of them; pass [image] (the result is a "
            "batch: (N, C, H, W))"
        )
    if isinstance(images, NOT_A_BATCH) or not isinstance(images, Iterable):
        array = isinstance(images, np.ndarray)
        made = "; Image.fromarray(array) makes one of an array" if array else ""
        raise PipelineError(f"preprocess: got a {type(images).__name__}; {HOW}{made}")
    batch = list(images)
    if not batch:
        raise PipelineError("preprocess: no images given; pass a list of PIL images")
    for i, img in enumerate(batch):
        if not isinstance(img, Image.Image):
            raise PipelineError(
                f"preprocess: images[{i}] is a {type(img).__name__}, not a PIL image; {HOW}"
            )
        if 0 in img.size:  # Pillow would resize it to a blank square, embedded as if an image
            raise PipelineError(
                f"preprocess: images[{i}] is {img.width}x{img.height} pixels, empty; pass "
                "images of at least 1x1 pixels"
            )
    return batch


@dataclass(frozen=True)
class Preprocessing:
    """What training did to an image before the encoder saw it, as a function of PIL images
    (`__call__`) or files (`file`)."""

    image_size: int
    channels: int  # 1 grayscale, 3 RGB
    resize: str = "stretch"  # stretch | crop: how the dataset was prepared (data.resize)
    device: torch.device = torch.device("cpu")

    @property
    def mode(self) -> str:
        return MODES[self.channels]

    def file(self, path: Path) -> np.ndarray:
        """One image file as uint8 (H, W, C); UndecodableImage names a file that fails."""
        img = decode(path, self.mode, self.image_size, self.resize)
        return img.reshape(self.image_size, self.image_size, self.channels)

    def image(self, img: Image.Image, name: str = "image") -> np.ndarray:
        """One PIL image as uint8 (H, W, C)."""
        upright = ImageOps.exif_transpose(img)  # as the prepare stage reads a file
        array = convert(upright, self.mode, self.image_size, self.resize, name)
        return array.reshape(self.image_size, self.image_size, self.channels)

    def __call__(self, images: Sequence[Image.Image]) -> torch.Tensor:
        """A list of PIL images -> float32 (N, C, H, W) in [0, 1] on the encoder's device."""
        batch = _batch(images)
        arrays = np.stack([self.image(img, f"images[{i}]") for i, img in enumerate(batch)])
        return to_images(arrays, self.device)

    def describe(self) -> dict:
        """The preprocessing as data, for a model exported without this code."""
        return {
            "image_size": self.image_size,
            "channels": self.channels,
            "color_mode": {"L": "grayscale", "RGB": "RGB"}[self.mode],
            "resize": f"{self.resize} to {self.image_size}x{self.image_size}, bilinear "
            "(antialiased when shrinking); EXIF orientation applied first",
            "input": "float32 (N, C, H, W): 8-bit pixels / 255, in [0, 1]",
            "normalization": {
                "mean": [NORMALIZE_MEAN] * self.channels,
                "std": [NORMALIZE_STD] * self.channels,
                "inside_model": True,  # the model computes (x - mean) / std itself
            },
        }


def load_encoder(
    path: str | Path, device: str = "auto", resize: str = "stretch"
) -> tuple[Encoder, Preprocessing]:
    """The encoder f of a pretrained checkpoint (h = f(x), what evaluation uses) in eval mode
    and frozen (`encoder.requires_grad_()` to train it further) on `device` (auto: CUDA, then
    MPS, then the CPU), and its preprocessing: the checkpoint's image size and channels, and
    `resize` (stretch or crop, as the dataset was prepared).

    Its sha256 is checked: that proves the file is undamaged, not who made it (anyone can
    recompute it). A file from elsewhere still cannot run code (torch's weights_only loader)
    nor make loading take unbounded memory (its image size, channels and model config are held
    to params.yaml's bounds and to the weights it holds); a bad one is a PipelineError."""
    if resize not in RESIZE_POLICIES:
        raise PipelineError(f"resize {resize!r}: must be one of {', '.join(RESIZE_POLICIES)}")
    try:
        target = select_device(device)
    except PipelineError:
        raise PipelineError(
            f"device {device!r} is not available on this machine; use auto or cpu"
        ) from None
    encoder, meta = checkpoint.load_encoder(path, target)
    prep = Preprocessing(meta["image_size"], meta["in_channels"], resize, target)
    return encoder.requires_grad_(False), prep

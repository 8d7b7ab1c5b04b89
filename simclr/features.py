"""What the probes read: h = f(x) from a frozen encoder, or the raw pixels (a baseline)."""

from __future__ import annotations

import numpy as np
import torch

from simclr.data.prepared import read_rows
from simclr.device import to_images
from simclr.models import Encoder
from simclr.progress import track


@torch.no_grad()
def extract_features(
    encoder: Encoder, images: np.ndarray, device: torch.device, batch_size: int = 512
) -> np.ndarray:
    """h = f(x) for uint8 NHWC images, with the encoder in eval mode (BN uses running stats)."""
    encoder.eval()
    feats = [
        encoder(to_images(read_rows(images, slice(i, i + batch_size)), device))
        .float()
        .cpu()
        .numpy()
        for i in track(range(0, len(images), batch_size), "features", batch_size, len(images))
    ]
    return np.concatenate(feats)


def raw_pixels(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255

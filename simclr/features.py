"""What the probes read: h = f(x) from a frozen encoder, or the raw pixels (a baseline)."""

from __future__ import annotations

from copy import deepcopy

import numpy as np
import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from simclr import defaults as D
from simclr.data.prepared import read_rows
from simclr.device import to_images
from simclr.models import Encoder
from simclr.progress import track

BATCH_SIZE = D.EVAL_BATCH_SIZE  # evaluate.batch_size's default


def for_inference(model: nn.Module) -> nn.Module:
    """A copy of `model` in eval mode with each BatchNorm folded into the convolution before
    it: the same function (BN with running statistics is affine), one pass fewer over every
    activation (about 10 % faster inference on this CPU). `model` is left as it was, in eval
    mode."""
    plain = deepcopy(model.eval())
    for m in plain.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            # A BN subclass from outside torch (simclr.distributed's synchronised one) is its
            # torch class at inference: fx traces into any other module, and folds only those.
            m.__class__ = next(c for c in type(m).__mro__ if c.__module__.startswith("torch."))
    return fuse(plain, inplace=True)


@torch.inference_mode()
def extract_features(
    encoder: Encoder,
    images: np.ndarray,
    device: torch.device,
    batch_size: int = BATCH_SIZE,
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """h = f(x) for uint8 NHWC images, with the encoder in eval mode (BN uses running stats,
    folded: `for_inference`), read and computed batch by batch (inputs channels_last, faster
    on every device here) into one float32 array, under `amp_dtype` autocast (the training
    precision) where one is given."""
    folded = for_inference(encoder)
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    out = np.empty((len(images), encoder.out_dim), dtype=np.float32)
    for i in track(range(0, len(images), batch_size), "features", batch_size, len(images)):
        x = to_images(read_rows(images, slice(i, i + batch_size)), device)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            out[i : i + len(x)] = folded(x).float().cpu().numpy()
    return out


def raw_pixels(images: np.ndarray, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """The pixels in [0, 1] as float32 vectors (N, H x W x C), read batch by batch so that a
    memory-mapped array is never resident as a whole."""
    out = np.empty((len(images), int(np.prod(images.shape[1:]))), dtype=np.float32)
    for i in range(0, len(images), batch_size):
        rows = read_rows(images, slice(i, i + batch_size))
        np.divide(rows.reshape(len(rows), -1), 255, out=out[i : i + len(rows)], dtype=np.float32)
    return out

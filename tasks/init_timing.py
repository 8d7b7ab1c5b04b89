"""`simclr init`'s measurement of this machine: a few real pretraining steps
(`simclr.train.pretrain` itself: views, forward and backward of the 2N views, NT-Xent,
optimizer step) and a few batches of frozen-encoder inference (`extract_features`, as
evaluation runs it), on random images of the chosen size, with the chosen encoder, batch and
precision, on the device `pretrain.device` picks. Random pixels cost what real ones do: no
step depends on their values."""

from __future__ import annotations

import contextlib
import os
import statistics
import time
from dataclasses import dataclass

import numpy as np

from simclr.config import Params

# Seconds the pretraining measurement may run before it stops after its current step; the
# first step (oneDNN/cuDNN set-up, allocations) is a warm-up and not counted. The environment
# variable shortens it (tests).
SECONDS = 12.0
SECONDS_VARIABLE = "SIMCLR_INIT_MEASURE_S"
MAX_STEPS = 8  # measured epochs at most: enough for a median on a machine that is shared
STEPS_PER_EPOCH = 4  # an epoch's own start and end cost a one-step epoch a third of its time
INFERENCE_BATCHES = 3  # evaluate.batch_size batches timed after a warm-up one


@dataclass(frozen=True)
class Timing:
    device: str  # what pretrain.device resolved to: cpu, cuda or mps
    precision: str  # what pretrain.precision resolved to: fp32, bf16 or fp16
    pretrain_s: float  # seconds per source image in a pretraining step (2 views)
    inference_s: float  # seconds per image of frozen-encoder inference
    steps: int  # pretraining steps measured (warm-up excluded)
    seconds: float  # wall time of the whole measurement


class _Enough(Exception):
    """Raised from the epoch callback to stop pretraining once enough steps are timed."""


def _pretrain_rates(params: Params, images: np.ndarray, seconds: float) -> list[float]:
    """Images/s of STEPS_PER_EPOCH-step epochs after a warm-up epoch, until `seconds` have
    passed."""
    from dataclasses import replace

    from simclr.train import Recipe, pretrain
    from tasks.arguments import model_kwargs, recipe_kwargs

    cfg = replace(
        Recipe(**recipe_kwargs(params.pretrain)), epochs=MAX_STEPS + 1, warmup_epochs=0, knn_every=0
    )
    rates: list[float] = []
    start = time.perf_counter()

    def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
        if epoch > 0:  # epoch 0 is the warm-up step
            rates.append(metrics["images_per_s"])
        if rates and time.perf_counter() - start > seconds:
            raise _Enough

    with contextlib.suppress(_Enough):
        pretrain(images, model_kwargs(params.model), cfg, params.seed, on_epoch)
    return rates


def _inference_rate(params: Params, images: np.ndarray, device) -> float:
    """Images/s of `extract_features` with a freshly built encoder, after a warm-up batch."""
    from simclr.device import autocast_dtype
    from simclr.features import extract_features
    from simclr.models import build_model
    from tasks.arguments import model_kwargs

    encoder, _ = build_model(images.shape[-1], images.shape[1], **model_kwargs(params.model))
    encoder = encoder.to(device)
    amp = autocast_dtype(params.pretrain.precision, device)
    batch = params.evaluate.batch_size
    extract_features(encoder, images[:batch], device, batch, amp)  # warm-up
    start = time.perf_counter()
    extract_features(encoder, images, device, batch, amp)
    return len(images) / (time.perf_counter() - start)


def measure(params: Params, seconds: float | None = None) -> Timing:
    """Time pretraining and inference of `params`' encoder at `params.data.image_size` and
    `params.data.channels`, pretrain.batch_size and pretrain.precision."""
    from simclr.device import autocast_dtype, select_device
    from simclr.train import PRECISIONS

    if seconds is None:
        seconds = float(os.environ.get(SECONDS_VARIABLE, SECONDS))
    start = time.perf_counter()
    size, channels = params.data.image_size, params.data.channels or 3
    batch = max(params.pretrain.batch_size, params.evaluate.batch_size * INFERENCE_BATCHES)
    rng = np.random.default_rng(params.seed)
    images = rng.integers(0, 256, (batch, size, size, channels), dtype=np.uint8)
    steps = images[: params.pretrain.batch_size]
    rates = _pretrain_rates(params, np.concatenate([steps] * STEPS_PER_EPOCH), seconds)
    device = select_device(params.pretrain.device)
    inference = _inference_rate(
        params, images[: params.evaluate.batch_size * INFERENCE_BATCHES], device
    )
    precision = PRECISIONS[autocast_dtype(params.pretrain.precision, device)]
    return Timing(
        device.type,
        precision,
        pretrain_s=1 / statistics.median(rates),
        inference_s=1 / inference,
        steps=len(rates),
        seconds=time.perf_counter() - start,
    )

"""The SimCLR pretraining loop."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from simclr.augment import simclr_view
from simclr.config import ModelConfig, PretrainConfig
from simclr.device import seed_everything, select_device, to_images
from simclr.errors import PipelineError
from simclr.loss import nt_xent
from simclr.models import ResNetEncoder, build_model
from simclr.optim import build_optimizer, warmup_cosine

log = logging.getLogger("simclr.train")

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class Pretrained:
    encoder: ResNetEncoder
    head: nn.Module
    history: list[dict[str, float]]
    device: torch.device


def pretrain(
    images: np.ndarray,
    model_cfg: ModelConfig,
    cfg: PretrainConfig,
    seed: int,
    on_epoch: EpochCallback | None = None,
) -> Pretrained:
    """Pretrain encoder + head on unlabelled uint8 NHWC `images` with NT-Xent.

    Two views per image are made in batches on the training device; both views go through the
    network together, so BN statistics cover the 2N views. The learning rate is warmed up
    linearly and decayed by a cosine, stepped every iteration.
    """
    device = select_device(cfg.device)
    seed_everything(seed, device, cfg.threads)
    n = len(images)
    if n < 2:
        raise PipelineError(f"pretraining needs at least 2 images, got {n}; check data params")
    batch = min(cfg.batch_size, n)
    steps_per_epoch = n // batch  # drop the last partial batch: NT-Xent wants full batches
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = steps_per_epoch * cfg.warmup_epochs

    encoder, head = build_model(model_cfg, in_channels=images.shape[-1])
    encoder, head = encoder.to(device), head.to(device)
    optimizer = build_optimizer([encoder, head], cfg, batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps)
    )
    data = torch.from_numpy(np.ascontiguousarray(images))  # uint8; batches move to the device
    order_gen = torch.Generator().manual_seed(seed)
    view_gen = torch.Generator(device=device).manual_seed(seed + 1)
    log.info(
        "pretraining on %d images, %d epochs x %d steps of %d, device %s",
        n,
        cfg.epochs,
        steps_per_epoch,
        batch,
        device,
    )
    history = []
    for epoch in range(cfg.epochs):
        encoder.train()
        head.train()
        start, losses = time.perf_counter(), []
        perm = torch.randperm(n, generator=order_gen)
        for step in range(steps_per_epoch):
            x = to_images(data[perm[step * batch : (step + 1) * batch]].numpy(), device)
            views = torch.cat([simclr_view(x, cfg.augment, view_gen) for _ in range(2)])
            z = head(encoder(views))
            loss = nt_xent(z[:batch], z[batch:], cfg.temperature)
            if not math.isfinite(loss.item()):
                raise PipelineError(
                    f"pretraining diverged: non-finite loss at epoch {epoch + 1}, step {step + 1}; "
                    "lower pretrain.lr or raise pretrain.warmup_epochs"
                )
            lr = optimizer.param_groups[0]["lr"]  # the rate this step used
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        seconds = time.perf_counter() - start
        metrics = {
            "loss": float(np.mean(losses)),
            "lr": lr,
            "images_per_s": steps_per_epoch * batch / seconds,
            "epoch_seconds": seconds,
        }
        history.append(metrics)
        log.info(
            "epoch %d/%d loss %.4f lr %.4f %.0f images/s",
            epoch + 1,
            cfg.epochs,
            metrics["loss"],
            metrics["lr"],
            metrics["images_per_s"],
        )
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return Pretrained(encoder, head, history, device)

"""Semi-supervised fine-tuning (the paper's Appendix B.5): the whole encoder plus a linear head
trained on the labelled subset with random resized crop and flip only, Nesterov SGD with a
cosine decay and no warmup. From a random-init encoder it is supervised training from scratch
on the same labels: the baseline."""

from __future__ import annotations

import copy
import logging
import math
from contextlib import nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from simclr import defaults as D
from simclr.augment import random_resized_crop_flip
from simclr.data.prepared import read_rows
from simclr.device import to_images
from simclr.features import BATCH_SIZE, for_inference
from simclr.lars import lars_param_groups
from simclr.models import Encoder
from simclr.optim import warmup_cosine
from simclr.progress import track

log = logging.getLogger("simclr.finetune")

CROP_RATIO = (3 / 4, 4 / 3)


def finetune_steps(
    n_images: int,
    *,
    epochs: int = D.FINETUNE_EPOCHS,
    min_steps: int = D.FINETUNE_MIN_STEPS,
    max_steps: int = D.FINETUNE_MAX_STEPS,
    batch_size: int = D.FINETUNE_BATCH_SIZE,
) -> tuple[int, int]:
    """(batch, steps): `epochs` passes over the subset, but at least `min_steps` updates (a
    1 % subset is a batch or two) and at most `max_steps` (0 = no cap) where the subset is
    large: the cost of a 100 % run stays bounded."""
    budget = finetune_budget(
        n_images, epochs=epochs, min_steps=min_steps, max_steps=max_steps, batch_size=batch_size
    )
    return budget["batch"], budget["steps"]


def finetune_budget(
    n_images: int,
    *,
    epochs: int = D.FINETUNE_EPOCHS,
    min_steps: int = D.FINETUNE_MIN_STEPS,
    max_steps: int = D.FINETUNE_MAX_STEPS,
    batch_size: int = D.FINETUNE_BATCH_SIZE,
) -> dict:
    """What fine-tuning `n_images` costs and what bound it: {batch, steps, passes (over the
    subset), bound: "epochs", "min_steps" or "max_steps"}. A max_steps bound means fewer
    passes than `epochs` asked for."""
    batch = min(batch_size, n_images)
    asked = math.ceil(epochs * n_images / batch)
    steps, bound = asked, "epochs"
    if min_steps > asked:
        steps, bound = min_steps, "min_steps"
    if max_steps and steps > max_steps:
        steps, bound = max_steps, "max_steps"
    return {"batch": batch, "steps": steps, "passes": steps * batch / n_images, "bound": bound}


def finetune_optimizer(
    model: nn.Module,
    steps: int,
    *,
    lr: float = D.FINETUNE_LR,
    momentum: float = D.FINETUNE_MOMENTUM,
    weight_decay: float = D.FINETUNE_WEIGHT_DECAY,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """Nesterov SGD (plain momentum when momentum is 0) with pretraining's parameter groups
    (BN and biases not decayed) and its cosine schedule without warmup, over `steps` updates."""
    optimizer = torch.optim.SGD(
        lars_param_groups([model], weight_decay),
        lr=lr,
        momentum=momentum,
        nesterov=momentum > 0,
    )
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: warmup_cosine(s, 0, steps))
    return optimizer, schedule


def finetune(
    encoder: Encoder,
    images: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    seed: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
    *,
    epochs: int = D.FINETUNE_EPOCHS,
    min_steps: int = D.FINETUNE_MIN_STEPS,
    max_steps: int = D.FINETUNE_MAX_STEPS,
    batch_size: int = D.FINETUNE_BATCH_SIZE,
    lr: float = D.FINETUNE_LR,
    momentum: float = D.FINETUNE_MOMENTUM,
    weight_decay: float = D.FINETUNE_WEIGHT_DECAY,
    crop_scale: tuple[float, float] = D.CROP_SCALE,
    flip_p: float = D.FLIP_P,
) -> nn.Sequential:
    """A fine-tuned copy of `encoder` with its linear head, in eval mode; `encoder` itself is
    left as it was. The keyword arguments are params.yaml's `evaluate.finetune` keys (but
    `seeds`, which says how many label subsets are fine-tuned)."""
    model = nn.Sequential(copy.deepcopy(encoder), nn.Linear(encoder.out_dim, n_classes))
    nn.init.zeros_(model[1].weight)  # as the official code's head: no random direction to undo
    nn.init.zeros_(model[1].bias)
    model.to(device, memory_format=torch.channels_last).train()
    batch, steps = finetune_steps(
        len(images), epochs=epochs, min_steps=min_steps, max_steps=max_steps, batch_size=batch_size
    )
    optimizer, schedule = finetune_optimizer(
        model, steps, lr=lr, momentum=momentum, weight_decay=weight_decay
    )
    rng = np.random.default_rng(seed)
    view_gen = torch.Generator(device=device).manual_seed(seed)
    targets = torch.as_tensor(labels, dtype=torch.long)
    autocast = torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext()
    order: np.ndarray = np.empty(0, dtype=np.int64)
    for _ in track(range(steps), "fine-tuning", batch):
        if len(order) < batch:  # a fresh permutation when the epoch runs out
            order = np.concatenate([order, rng.permutation(len(images))])
        idx, order = np.sort(order[:batch]), order[batch:]
        x = to_images(read_rows(images, idx), device)
        x = random_resized_crop_flip(x, crop_scale, CROP_RATIO, flip_p, view_gen)
        x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            logits = model(x)
        loss = F.cross_entropy(logits.float(), targets[idx].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    if not math.isfinite(loss.item()):
        log.warning("fine-tuning ended with a non-finite loss (lr %s); lower it", lr)
    return model.eval()


@torch.inference_mode()
def predict(
    model: nn.Module,
    images: np.ndarray,
    device: torch.device,
    batch_size: int = BATCH_SIZE,
    amp_dtype: torch.dtype | None = None,
) -> np.ndarray:
    """Class predictions for uint8 NHWC images, the model in eval mode (BN folded:
    `for_inference`), batch by batch, inputs channels_last, under `amp_dtype` autocast (the
    training precision) where one is given."""
    folded = for_inference(model)
    autocast = torch.autocast(device.type, dtype=amp_dtype, enabled=amp_dtype is not None)
    out = np.empty(len(images), dtype=np.int64)
    for i in range(0, len(images), batch_size):
        x = to_images(read_rows(images, slice(i, i + batch_size)), device)
        with autocast:
            logits = folded(x.contiguous(memory_format=torch.channels_last))
        out[i : i + len(x)] = logits.argmax(1).cpu().numpy()
    return out

"""Optimizers and the learning-rate schedule: linear warmup then cosine decay, per iteration."""

from __future__ import annotations

import math

import torch
from torch import nn

from simclr import defaults as D
from simclr.lars import LARS, lars_param_groups


def scaled_lr(lr: float, batch_size: int, lr_scaling: str = D.LR_SCALING) -> float:
    """The paper's scalings, for the batch actually used: linear, lr x batch / 256, or square
    root, lr x sqrt(batch) (the paper's 0.075 x sqrt(batch) for small batches and long runs)."""
    if lr_scaling == "sqrt":
        return lr * math.sqrt(batch_size)
    if lr_scaling != "linear":
        raise ValueError(f"lr_scaling {lr_scaling!r}: linear or sqrt")
    return lr * batch_size / 256


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate at `step` (0-based): linear from 1/warmup to 1, then cosine
    to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(
    modules: list[nn.Module],
    batch_size: int = D.BATCH_SIZE,
    *,
    optimizer: str = D.OPTIMIZER,
    lr: float = D.LR,
    lr_scaling: str = D.LR_SCALING,
    momentum: float = D.MOMENTUM,
    weight_decay: float = D.WEIGHT_DECAY,
    trust_coefficient: float = D.TRUST_COEFFICIENT,
) -> torch.optim.Optimizer:
    """LARS, Nesterov SGD or AdamW at `lr` scaled for `batch_size` (`scaled_lr`); BN and bias
    parameters are neither decayed nor adapted. The keyword arguments are params.yaml's
    `pretrain` keys of the same names."""
    groups = lars_param_groups(modules, weight_decay)
    rate = scaled_lr(lr, batch_size, lr_scaling)
    if optimizer == "lars":
        return LARS(groups, lr=rate, momentum=momentum, trust_coefficient=trust_coefficient)
    if optimizer == "sgd":
        return torch.optim.SGD(groups, lr=rate, momentum=momentum, nesterov=True)
    if optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=rate)
    raise ValueError(f"optimizer {optimizer!r}: lars, sgd or adamw")

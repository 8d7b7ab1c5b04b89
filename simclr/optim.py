"""Optimizers and the learning-rate schedule: linear warmup then cosine decay, per iteration."""

from __future__ import annotations

import math

import torch
from torch import nn

from simclr.config import PretrainConfig
from simclr.lars import LARS, lars_param_groups


def scaled_lr(cfg: PretrainConfig, batch_size: int) -> float:
    """The paper's scalings, for the batch actually used: linear, lr x batch / 256, or square
    root, lr x sqrt(batch) (the paper's 0.075 x sqrt(batch) for small batches and long runs)."""
    if cfg.lr_scaling == "sqrt":
        return cfg.lr * math.sqrt(batch_size)
    return cfg.lr * batch_size / 256


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate at `step` (0-based): linear from 1/warmup to 1, then cosine
    to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def build_optimizer(
    modules: list[nn.Module], cfg: PretrainConfig, batch_size: int
) -> torch.optim.Optimizer:
    """LARS, Nesterov SGD or AdamW; BN and bias parameters are neither decayed nor adapted."""
    groups = lars_param_groups(modules, cfg.weight_decay)
    lr = scaled_lr(cfg, batch_size)
    if cfg.optimizer == "lars":
        return LARS(groups, lr=lr, momentum=cfg.momentum, trust_coefficient=cfg.trust_coefficient)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)

"""Optimizers and the learning-rate schedule: linear warmup then cosine decay, per iteration."""

from __future__ import annotations

import math

import torch
from torch import nn

from simclr.config import PretrainConfig


def scaled_lr(cfg: PretrainConfig, batch_size: int) -> float:
    """The paper's linear scaling: lr = base x batch / 256, for the batch actually used."""
    return cfg.lr * batch_size / 256


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier of the peak rate at `step` (0-based): linear from 1/warmup to 1, then cosine
    to 0 at `total_steps`."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def _param_groups(modules: list[nn.Module], weight_decay: float) -> list[dict]:
    """Weight decay on weights of convolutions and linear layers only; not on BN or biases."""
    decay, no_decay = [], []
    for m in modules:
        for p in m.parameters():
            (decay if p.ndim > 1 else no_decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    modules: list[nn.Module], cfg: PretrainConfig, batch_size: int
) -> torch.optim.Optimizer:
    groups = _param_groups(modules, cfg.weight_decay)
    lr = scaled_lr(cfg, batch_size)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=cfg.momentum, nesterov=True)
    return torch.optim.AdamW(groups, lr=lr)

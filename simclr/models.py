"""Encoder f (a ResNet with a CIFAR-style stem) and projection head g.

Evaluation uses h = f(x), never z = g(h).
"""

from __future__ import annotations

import torch
from torch import nn

from simclr.config import ModelConfig


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    """CIFAR stem (3x3 stride-1 conv, no max-pool), stages of BasicBlocks, global average pool."""

    def __init__(self, cfg: ModelConfig, in_channels: int):
        super().__init__()
        w0 = cfg.widths[0]
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU()
        )
        layers, cin = [], w0
        for i, (w, n) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
            for j in range(n):
                layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
                cin = w
        self.layers = nn.Sequential(*layers)
        self.out_dim = cin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: images in [0, 1], (N, C, H, W); returns h, (N, out_dim)."""
        return self.layers(self.stem((x - 0.5) / 0.5)).mean((2, 3))


def projection_head(in_dim: int, cfg: ModelConfig) -> nn.Sequential:
    """SimCLR v1's 2-layer MLP with BN: Linear-BN-ReLU-Linear."""
    return nn.Sequential(
        nn.Linear(in_dim, cfg.proj_hidden_dim, bias=False),
        nn.BatchNorm1d(cfg.proj_hidden_dim),
        nn.ReLU(),
        nn.Linear(cfg.proj_hidden_dim, cfg.proj_dim),
    )


def build_model(cfg: ModelConfig, in_channels: int) -> tuple[ResNetEncoder, nn.Sequential]:
    encoder = ResNetEncoder(cfg, in_channels)
    return encoder, projection_head(encoder.out_dim, cfg)

"""Encoder f (a ResNet) and projection head g.

Evaluation uses h = f(x), never z = g(h). Encoders take images in [0, 1] and normalize inside
forward, so every caller feeds the same input.
"""

from __future__ import annotations

import torch
from torch import nn

from simclr.config import ModelConfig

# Every encoder maps its [0, 1] input to (x - MEAN) / STD, per channel, inside forward.
NORMALIZE_MEAN = 0.5
NORMALIZE_STD = 0.5


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


def _small_resnet(cfg: ModelConfig, in_channels: int) -> tuple[nn.Module, int]:
    """The CPU-sized default: CIFAR stem, stages of BasicBlocks as `widths` and `blocks` say."""
    w0 = cfg.widths[0]
    stem = nn.Sequential(
        nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU()
    )
    layers, cin = [], w0
    for i, (w, n) in enumerate(zip(cfg.widths, cfg.blocks, strict=True)):
        for j in range(n):
            layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
            cin = w
    return nn.Sequential(stem, *layers), cin


class Encoder(nn.Module):
    """f: images in [0, 1], (N, C, H, W) -> h, (N, out_dim)."""

    def __init__(self, cfg: ModelConfig, in_channels: int, image_size: int):
        super().__init__()
        if cfg.encoder == "small":
            self.net, self.out_dim = _small_resnet(cfg, in_channels)
            self._pool = True
        else:
            from simclr.resnets import torchvision_resnet  # only here: see simclr.resnets

            self.net, self.out_dim = torchvision_resnet(cfg, in_channels, image_size)
            self._pool = False  # torchvision's ResNet pools and flattens itself
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net((x - NORMALIZE_MEAN) / NORMALIZE_STD)
        return y.mean((2, 3)) if self._pool else y


def projection_head(in_dim: int, cfg: ModelConfig) -> nn.Sequential:
    """g: v1 = 2 layers, v2 = 3 layers; Linear + BN on every layer, ReLU on all but the last,
    as in the official implementation (BN makes the linear biases redundant)."""
    n_layers = 2 if cfg.head == "v1" else 3
    dims = [in_dim] + [cfg.proj_hidden_dim] * (n_layers - 1) + [cfg.proj_dim]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(dims[i], dims[i + 1], bias=False), nn.BatchNorm1d(dims[i + 1])]
        if i < n_layers - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_model(cfg: ModelConfig, in_channels: int, image_size: int) -> tuple[Encoder, nn.Module]:
    encoder = Encoder(cfg, in_channels, image_size)
    return encoder, projection_head(encoder.out_dim, cfg)

"""Encoder f (a ResNet) and projection head g.

Evaluation uses h = f(x), never z = g(h). Encoders take images in [0, 1] and normalize inside
forward, so every caller feeds the same input.
"""

from __future__ import annotations

import torch
from torch import nn

from simclr import defaults as D

# Every encoder maps its [0, 1] input to (x - MEAN) / STD, per channel, inside forward.
NORMALIZE_MEAN = 0.5
NORMALIZE_STD = 0.5
# build_model's keyword arguments that are the encoder's (the others are the head's)
ENCODER_KEYS = ("encoder", "width", "stem", "widths", "blocks")


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


def _small_resnet(
    in_channels: int, widths: tuple[int, ...], blocks: tuple[int, ...]
) -> tuple[nn.Module, int]:
    """The CPU-sized default: CIFAR stem, stages of BasicBlocks as `widths` and `blocks` say."""
    w0 = widths[0]
    stem = nn.Sequential(
        nn.Conv2d(in_channels, w0, 3, 1, 1, bias=False), nn.BatchNorm2d(w0), nn.ReLU()
    )
    layers, cin = [], w0
    for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
        for j in range(n):
            layers.append(BasicBlock(cin, w, 2 if (i > 0 and j == 0) else 1))
            cin = w
    return nn.Sequential(stem, *layers), cin


class Encoder(nn.Module):
    """f: images in [0, 1], (N, C, H, W) -> h, (N, out_dim). `encoder`: small (stages of
    `widths` channels and `blocks` BasicBlocks), or resnet18/34/50 widened `width` times with
    the `stem` (auto: CIFAR's up to 64 px)."""

    def __init__(
        self,
        in_channels: int = 3,
        image_size: int = 32,
        *,
        encoder: str = D.ENCODER,
        width: int = D.WIDTH,
        stem: str = D.STEM,
        widths: tuple[int, ...] = D.WIDTHS,
        blocks: tuple[int, ...] = D.BLOCKS,
    ):
        super().__init__()
        if len(widths) != len(blocks):
            raise ValueError(f"widths {widths} and blocks {blocks} differ in length")
        if encoder == "small":
            self.net, self.out_dim = _small_resnet(in_channels, widths, blocks)
            self._pool = True
        else:
            from simclr.resnets import torchvision_resnet  # only here: see simclr.resnets

            self.net, self.out_dim = torchvision_resnet(
                encoder, in_channels, image_size, width=width, stem=stem
            )
            self._pool = False  # torchvision's ResNet pools and flattens itself
        self.in_channels = in_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.net((x - NORMALIZE_MEAN) / NORMALIZE_STD)
        return y.mean((2, 3)) if self._pool else y


def projection_head(
    in_dim: int,
    *,
    head: str = D.HEAD,
    proj_hidden_dim: int = D.PROJ_HIDDEN_DIM,
    proj_dim: int = D.PROJ_DIM,
) -> nn.Sequential:
    """g: v1 = 2 layers, v2 = 3 layers; Linear + BN on every layer, ReLU on all but the last,
    as in the official implementation (BN makes the linear biases redundant)."""
    if head not in ("v1", "v2"):
        raise ValueError(f"head {head!r}: v1 or v2")
    n_layers = 2 if head == "v1" else 3
    dims = [in_dim] + [proj_hidden_dim] * (n_layers - 1) + [proj_dim]
    layers: list[nn.Module] = []
    for i in range(n_layers):
        layers += [nn.Linear(dims[i], dims[i + 1], bias=False), nn.BatchNorm1d(dims[i + 1])]
        if i < n_layers - 1:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def build_model(
    in_channels: int = 3,
    image_size: int = 32,
    *,
    encoder: str = D.ENCODER,
    width: int = D.WIDTH,
    stem: str = D.STEM,
    widths: tuple[int, ...] = D.WIDTHS,
    blocks: tuple[int, ...] = D.BLOCKS,
    head: str = D.HEAD,
    proj_hidden_dim: int = D.PROJ_HIDDEN_DIM,
    proj_dim: int = D.PROJ_DIM,
) -> tuple[Encoder, nn.Module]:
    """Encoder f and projection head g for `in_channels` x `image_size` px images; the keyword
    arguments are params.yaml's `model` keys (`build_model(c, s, **params.model.model_dump())`)."""
    kwargs = dict(encoder=encoder, width=width, stem=stem, widths=widths, blocks=blocks)
    f = Encoder(in_channels, image_size, **kwargs)
    g = projection_head(f.out_dim, head=head, proj_hidden_dim=proj_hidden_dim, proj_dim=proj_dim)
    return f, g

"""SimCLR's view augmentations as batched tensor ops on the training device.

Input and output: float images in [0, 1], shape (N, C, H, W), C = 1 or 3. Every random draw
comes from the given torch.Generator, so views are reproducible from the seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simclr.config import AugmentConfig


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def _coin(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


def random_resized_crop_flip(
    x: torch.Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    flip_p: float,
    g: torch.Generator,
) -> torch.Tensor:
    """Crop a random area fraction in `scale` with aspect ratio in `ratio`, resize back to the
    input size, and mirror horizontally with probability `flip_p`: one affine grid per image."""
    n, device = x.shape[0], x.device
    area = _uniform(n, *scale, g, device)
    log_r = _uniform(n, math.log(ratio[0]), math.log(ratio[1]), g, device)
    aspect = torch.exp(log_r)
    # Width and height as fractions of the side; clamp so the crop fits (torchvision falls back
    # to a central crop after 10 rejected draws; clamping keeps it one batched draw).
    w = torch.sqrt(area * aspect).clamp(max=1.0)
    h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - h)
    sign = torch.where(_coin(n, flip_p, g, device), -1.0, 1.0).to(x.dtype)
    theta = torch.zeros(n, 2, 3, device=device, dtype=x.dtype)
    theta[:, 0, 0] = w * sign
    theta[:, 0, 2] = cx
    theta[:, 1, 1] = h
    theta[:, 1, 2] = cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def _hue_shift(x: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """Rotate hue by `shift` (fraction of a turn) in YIQ space, per image."""
    to_yiq = x.new_tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
    yiq = torch.einsum("ij,njhw->nihw", to_yiq, x)
    a = shift * 2 * math.pi
    cos, sin = torch.cos(a).view(-1, 1, 1), torch.sin(a).view(-1, 1, 1)
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], i * cos - q * sin, i * sin + q * cos], 1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(to_yiq), yiq)


def color_jitter(x: torch.Tensor, strength: float, p: float, g: torch.Generator) -> torch.Tensor:
    """Brightness, contrast, saturation (0.8s each) and hue (0.2s) in a random order (one order
    per batch), applied to each image with probability p. Saturation and hue need colour."""
    n, device = x.shape[0], x.device
    s = strength
    view = (n, 1, 1, 1)
    b = _uniform(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, g, device).view(view)
    c = _uniform(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, g, device).view(view)
    sat = _uniform(n, max(0.0, 1 - 0.8 * s), 1 + 0.8 * s, g, device).view(view)
    hue = _uniform(n, -min(0.2 * s, 0.5), min(0.2 * s, 0.5), g, device)
    ops = {
        0: lambda y: y * b,
        1: lambda y: (
            (y - _gray(y).mean((1, 2, 3), keepdim=True)) * c
            + _gray(y).mean((1, 2, 3), keepdim=True)
        ),
        2: lambda y: (y - _gray(y)) * sat + _gray(y),
        3: lambda y: _hue_shift(y, hue),
    }
    order = torch.randperm(4, generator=g, device=device).tolist()
    if x.shape[1] == 1:
        order = [k for k in order if k < 2]
    y = x
    for k in order:
        y = ops[k](y).clamp(0, 1)
    apply = _coin(n, p, g, device).view(view)
    return torch.where(apply, y, x)


def random_grayscale(x: torch.Tensor, p: float, g: torch.Generator) -> torch.Tensor:
    if x.shape[1] == 1:
        return x
    apply = _coin(x.shape[0], p, g, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def gaussian_blur(
    x: torch.Tensor, p: float, g: torch.Generator, sigma: tuple[float, float] = (0.1, 2.0)
) -> torch.Tensor:
    """Blur with probability p; kernel 10% of the side (odd), sigma uniform in `sigma`."""
    n, c, h, _ = x.shape
    k = max(3, int(0.1 * h) // 2 * 2 + 1)
    s = _uniform(n, *sigma, g, x.device)
    r = torch.arange(k, device=x.device, dtype=x.dtype) - k // 2
    kern = torch.exp(-(r.view(1, -1) ** 2) / (2 * s.view(-1, 1) ** 2))
    kern = kern / kern.sum(1, keepdim=True)  # (n, k), one 1-D kernel per image
    # Separable depthwise convolution with a different kernel per image: fold N into channels.
    y = x.reshape(1, n * c, *x.shape[2:])
    kx = kern.repeat_interleave(c, 0).view(n * c, 1, 1, k)
    y = F.conv2d(F.pad(y, (k // 2, k // 2, 0, 0), mode="reflect"), kx, groups=n * c)
    y = F.conv2d(F.pad(y, (0, 0, k // 2, k // 2), mode="reflect"), kx.transpose(2, 3), groups=n * c)
    y = y.view_as(x)
    apply = _coin(n, p, g, x.device).view(-1, 1, 1, 1)
    return torch.where(apply, y, x)


def simclr_view(x: torch.Tensor, cfg: AugmentConfig, g: torch.Generator) -> torch.Tensor:
    """One random view of each image in the batch."""
    y = random_resized_crop_flip(x, cfg.crop_scale, cfg.crop_ratio, cfg.flip_p, g)
    y = color_jitter(y, cfg.jitter_strength, cfg.jitter_p, g)
    y = random_grayscale(y, cfg.grayscale_p, g)
    if x.shape[-1] >= cfg.blur_min_size:
        y = gaussian_blur(y, cfg.blur_p, g)
    return y

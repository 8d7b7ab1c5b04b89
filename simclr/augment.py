"""SimCLR's view augmentations as batched tensor ops on the training device.

Input and output: float images in [0, 1], shape (N, C, H, W), C = 1 or 3. Every random draw
comes from the given torch.Generator, so views are reproducible from the seed.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from simclr import defaults as D


def _uniform(n: int, lo: float, hi: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) * (hi - lo) + lo


def _coin(n: int, p: float, g: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=device) < p


CROP_TRIES = 10  # as torchvision: draws per image before falling back to a central crop


def crop_boxes(
    n: int, scale: tuple[float, float], ratio: tuple[float, float], g: torch.Generator, device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random resized crop boxes as fractions of the side: width, height, centre x, centre y
    (centres in [-1, 1]). torchvision's sampler, batched: area uniform in `scale`, log aspect
    uniform in `ratio`, the first of CROP_TRIES draws that fits; if none fits, the largest
    central crop whose aspect is clamped into `ratio`."""
    area = _uniform(n * CROP_TRIES, *scale, g, device).view(n, CROP_TRIES)
    log_r = _uniform(n * CROP_TRIES, math.log(ratio[0]), math.log(ratio[1]), g, device)
    aspect = torch.exp(log_r).view(n, CROP_TRIES)
    w_all, h_all = torch.sqrt(area * aspect), torch.sqrt(area / aspect)
    fits = (w_all <= 1) & (h_all <= 1)
    first = torch.argmax(fits.int(), 1, keepdim=True)  # first fitting draw (0 if none fits)
    w, h = w_all.gather(1, first)[:, 0], h_all.gather(1, first)[:, 0]
    # Fallback on a square image: aspect 1 if allowed, else the nearer ratio bound.
    fallback = min(max(1.0, ratio[0]), ratio[1])
    fw, fh = (1.0, 1.0 / fallback) if fallback >= 1 else (fallback, 1.0)
    ok = fits.any(1)
    w = torch.where(ok, w, torch.full_like(w, fw))
    h = torch.where(ok, h, torch.full_like(h, fh))
    cx = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - w)
    cy = (torch.rand(n, generator=g, device=device) * 2 - 1) * (1 - h)
    return w, h, cx, cy


def random_resized_crop_flip(
    x: torch.Tensor,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    flip_p: float,
    g: torch.Generator,
) -> torch.Tensor:
    """Crop a random box (see crop_boxes), resize it back to the input size and mirror it
    horizontally with probability `flip_p`: one affine grid per image, one grid_sample."""
    n, device = x.shape[0], x.device
    w, h, cx, cy = crop_boxes(n, scale, ratio, g, device)
    sign = torch.where(_coin(n, flip_p, g, device), -1.0, 1.0)
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


def _brightness(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return y * f


def _contrast(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    mean = _gray(y).mean((1, 2, 3), keepdim=True)
    return (y - mean) * f + mean


def _saturation(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    gray = _gray(y)
    return (y - gray) * f + gray


def _hue(y: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    return _hue_shift(y, f.view(-1))


def color_jitter(x: torch.Tensor, strength: float, p: float, g: torch.Generator) -> torch.Tensor:
    """With probability p per image: brightness, contrast, saturation (factors uniform in
    [1 - 0.8s, 1 + 0.8s]) and hue (shift uniform in [-0.2s, 0.2s]) in a random order drawn per
    image, clamping to [0, 1] after each. Saturation and hue need colour: 1-channel images get
    brightness and contrast only."""
    n, device = x.shape[0], x.device
    s, view = strength, (n, 1, 1, 1)
    lo, hi = max(0.0, 1 - 0.8 * s), 1 + 0.8 * s
    hue_max = min(0.2 * s, 0.5)
    factors = [
        _uniform(n, lo, hi, g, device).view(view),
        _uniform(n, lo, hi, g, device).view(view),
        _uniform(n, lo, hi, g, device).view(view),
        _uniform(n, -hue_max, hue_max, g, device).view(view),
    ]
    ops = [_brightness, _contrast, _saturation, _hue][: 4 if x.shape[1] == 3 else 2]
    order = torch.argsort(torch.rand(n, len(ops), generator=g, device=device), 1)
    apply = _coin(n, p, g, device)
    y = x.clone()
    # Position by position, each op runs on the images that have it there: every image gets its
    # own order and the work stays one pass per op.
    for pos in range(len(ops)):
        for k, op in enumerate(ops):
            idx = torch.nonzero(apply & (order[:, pos] == k)).view(-1)
            if len(idx):
                y[idx] = op(y[idx], factors[k][idx]).clamp(0, 1)
    return y


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


def simclr_view(
    x: torch.Tensor,
    g: torch.Generator,
    *,
    crop_scale: tuple[float, float] = D.CROP_SCALE,
    crop_ratio: tuple[float, float] = D.CROP_RATIO,
    flip_p: float = D.FLIP_P,
    jitter_strength: float = D.JITTER_STRENGTH,
    jitter_p: float = D.JITTER_P,
    grayscale_p: float = D.GRAYSCALE_P,
    blur_p: float = D.BLUR_P,
    blur_min_size: int = D.BLUR_MIN_SIZE,
) -> torch.Tensor:
    """One random view of each image in the batch: random resized crop (area `crop_scale`,
    aspect `crop_ratio`) and flip, colour jitter of strength s = `jitter_strength`, random
    grayscale, and Gaussian blur on images of `blur_min_size` px or more. The keyword arguments
    are params.yaml's `pretrain.augment` keys."""
    y = random_resized_crop_flip(x, crop_scale, crop_ratio, flip_p, g)
    y = color_jitter(y, jitter_strength, jitter_p, g)
    y = random_grayscale(y, grayscale_p, g)
    if x.shape[-1] >= blur_min_size:
        y = gaussian_blur(y, blur_p, g)
    return y

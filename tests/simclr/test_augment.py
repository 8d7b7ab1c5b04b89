import inspect
from types import SimpleNamespace

import pytest
import torch
import torchvision.transforms.functional as TF

from simclr.augment import (
    color_jitter,
    crop_boxes,
    gaussian_blur,
    random_grayscale,
    random_resized_crop_flip,
    simclr_view,
)


def images(n=8, c=3, size=16, seed=0):
    return torch.rand(n, c, size, size, generator=torch.Generator().manual_seed(seed))


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_full_crop_without_flip_is_identity():
    x = images()
    y = random_resized_crop_flip(x, (1.0, 1.0), (1.0, 1.0), 0.0, gen())
    assert torch.allclose(x, y, atol=1e-5)


def test_flip_mirrors_horizontally():
    x = images()
    y = random_resized_crop_flip(x, (1.0, 1.0), (1.0, 1.0), 1.0, gen())
    assert torch.allclose(x.flip(-1), y, atol=1e-5)


def test_crop_zooms_in():
    # A horizontal ramp: a crop covering a quarter of the area spans about half the ramp.
    ramp = torch.linspace(0, 1, 32).expand(4, 1, 32, 32).contiguous()
    y = random_resized_crop_flip(ramp, (0.25, 0.25), (1.0, 1.0), 0.0, gen())
    span = y[:, 0, 16, -1] - y[:, 0, 16, 0]
    assert torch.all((span > 0.4) & (span < 0.6))


def test_views_are_seeded_and_differ_between_draws():
    cfg = {}  # the paper's
    x = images(size=40)
    a, b = simclr_view(x, gen(3), **cfg), simclr_view(x, gen(3), **cfg)
    assert torch.equal(a, b)
    g = gen(3)
    assert not torch.equal(simclr_view(x, g, **cfg), simclr_view(x, g, **cfg))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_grayscale_input_is_handled():
    x = images(c=1)
    y = simclr_view(x, gen())
    assert y.shape == x.shape and torch.isfinite(y).all()


def test_jitter_probability_zero_is_identity_and_one_changes_all():
    x = images()
    assert torch.equal(color_jitter(x, 1.0, 0.0, gen()), x)
    y = color_jitter(x, 1.0, 1.0, gen())
    assert all(not torch.allclose(x[i], y[i]) for i in range(len(x)))


def test_grayscale_makes_channels_equal():
    y = random_grayscale(images(), 1.0, gen())
    assert torch.allclose(y[:, 0], y[:, 1]) and torch.allclose(y[:, 1], y[:, 2])


def test_blur_keeps_constant_images_and_smooths_noise():
    flat = torch.full((2, 3, 40, 40), 0.3)
    assert torch.allclose(gaussian_blur(flat, 1.0, gen()), flat, atol=1e-6)
    noise = images(size=40)
    assert gaussian_blur(noise, 1.0, gen(), sigma=(2.0, 2.0)).std() < noise.std() * 0.8


def test_blur_is_off_for_small_images_by_default():
    cfg = dict(
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        flip_p=0.0,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=1.0,
    )
    x = images(size=32)
    assert torch.allclose(simclr_view(x, gen(), **cfg), x, atol=1e-5)
    x = images(size=40)
    assert not torch.allclose(simclr_view(x, gen(), **cfg), x, atol=1e-3)


# Rates over many draws. With n = 4000 draws a rate p has std sqrt(p(1-p)/n) <= 0.008, so a
# tolerance of 0.03 is over 3.5 standard deviations: these tests do not flake, yet a rate off by
# 0.05 or more fails.
N_DRAWS = 4000


def test_crop_areas_and_ratios_stay_in_range_and_cover_it():
    w, h, cx, cy = crop_boxes(N_DRAWS, (0.08, 1.0), (3 / 4, 4 / 3), gen(), "cpu")
    area, ratio = w * h, w / h
    assert area.min() >= 0.08 - 1e-6 and area.max() <= 1 + 1e-6
    assert ratio.min() >= 3 / 4 - 1e-6 and ratio.max() <= 4 / 3 + 1e-6
    assert (w <= 1).all() and (h <= 1).all()
    # Every box lies inside the image: centre +- half the size within [-1, 1].
    assert ((cx.abs() + w) <= 1 + 1e-6).all() and ((cy.abs() + h) <= 1 + 1e-6).all()
    # Areas are uniform over the range except where draws are rejected (near 1): the median
    # of the accepted areas sits below the unrejected 0.54.
    assert area.quantile(0.1) < 0.2 and 0.4 < area.median() < 0.56 and area.max() > 0.95


def test_crop_falls_back_to_a_central_box_when_nothing_fits():
    # Area 1 with an aspect far from 1 never fits: torchvision's fallback is the whole image
    # when its aspect 1 is allowed, else the nearest allowed aspect.
    w, h, cx, cy = crop_boxes(50, (1.0, 1.0), (2.0, 3.0), gen(), "cpu")
    assert torch.allclose(w, torch.ones(50)) and torch.allclose(h, torch.full((50,), 0.5))
    assert torch.allclose(cx, torch.zeros(50))


def test_flip_rate_is_one_half():
    x = images(N_DRAWS, c=1, size=4)
    y = random_resized_crop_flip(x, (1.0, 1.0), (1.0, 1.0), 0.5, gen())
    flipped = (y - x.flip(-1)).abs().amax((1, 2, 3)) < 1e-5
    assert abs(flipped.float().mean() - 0.5) < 0.03


def test_jitter_rate_is_point_eight():
    x = images(N_DRAWS, size=4)
    y = color_jitter(x, 1.0, 0.8, gen())
    changed = (y - x).abs().amax((1, 2, 3)) > 1e-6
    assert abs(changed.float().mean() - 0.8) < 0.03


def test_grayscale_rate_is_point_two():
    x = images(N_DRAWS, size=4)
    y = random_grayscale(x, 0.2, gen())
    gray = (y[:, 0] - y[:, 1]).abs().amax((1, 2)) < 1e-6
    assert abs(gray.float().mean() - 0.2) < 0.03


def test_jitter_matches_torchvision_per_image_in_a_per_image_order():
    # Reference: torchvision's functional ops, one image at a time, in the order and with the
    # factors our generator drew (draw sequence: 4 factors, the order, the coin). Brightness
    # and contrast do not commute once clamping bites, so a wrong order would show.
    n, s, p = 256, 1.0, 0.8
    x = images(n, c=1, size=8)
    y = color_jitter(x, s, p, gen(5))
    g = gen(5)
    factors = [torch.rand(n, generator=g) * 1.6 + 0.2 for _ in range(3)]
    torch.rand(n, generator=g)  # hue: drawn, unused on one channel
    order = torch.argsort(torch.rand(n, 2, generator=g), 1)
    apply = torch.rand(n, generator=g) < p
    ops = [TF.adjust_brightness, TF.adjust_contrast]
    for i in range(n):
        ref = x[i]
        if apply[i]:
            for k in order[i].tolist():
                ref = ops[k](ref, float(factors[k][i]))
        assert torch.allclose(y[i], ref, atol=1e-5), i
    assert len({tuple(o) for o in order[apply].tolist()}) == 2  # both orders occurred


def test_paper_augment_is_the_papers():
    params = inspect.signature(simclr_view).parameters
    cfg = SimpleNamespace(**{name: p.default for name, p in params.items()})
    assert cfg.crop_scale == (0.08, 1.0) and cfg.crop_ratio == pytest.approx((3 / 4, 4 / 3))
    assert (cfg.flip_p, cfg.jitter_strength, cfg.jitter_p) == (0.5, 1.0, 0.8)
    assert (cfg.grayscale_p, cfg.blur_p, cfg.blur_min_size) == (0.2, 0.5, 33)

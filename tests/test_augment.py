import torch

from simclr.augment import (
    color_jitter,
    gaussian_blur,
    random_grayscale,
    random_resized_crop_flip,
    simclr_view,
)
from simclr.config import AugmentConfig


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
    cfg = AugmentConfig()
    x = images(size=40)
    a, b = simclr_view(x, cfg, gen(3)), simclr_view(x, cfg, gen(3))
    assert torch.equal(a, b)
    g = gen(3)
    assert not torch.equal(simclr_view(x, cfg, g), simclr_view(x, cfg, g))
    assert a.shape == x.shape and a.min() >= 0 and a.max() <= 1


def test_grayscale_input_is_handled():
    x = images(c=1)
    y = simclr_view(x, AugmentConfig(), gen())
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
    cfg = AugmentConfig(
        crop_scale=(1.0, 1.0),
        crop_ratio=(1.0, 1.0),
        flip_p=0.0,
        jitter_p=0.0,
        grayscale_p=0.0,
        blur_p=1.0,
    )
    x = images(size=32)
    assert torch.allclose(simclr_view(x, cfg, gen()), x, atol=1e-5)
    x = images(size=40)
    assert not torch.allclose(simclr_view(x, cfg, gen()), x, atol=1e-3)

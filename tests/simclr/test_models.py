import pytest
import torch
import torchvision
from torch import nn

from simclr import defaults
from simclr.models import build_model


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize(
    ("encoder", "out_dim", "reference"),
    [
        ("resnet18", 512, torchvision.models.resnet18),
        ("resnet34", 512, torchvision.models.resnet34),
        ("resnet50", 2048, torchvision.models.resnet50),
    ],
)
def test_torchvision_encoders_are_torchvisions_networks_without_fc(encoder, out_dim, reference):
    f, _ = build_model(3, 224, encoder=encoder, stem="imagenet")
    tv = reference()
    assert f.out_dim == out_dim
    assert n_params(f) == n_params(tv) - n_params(tv.fc)
    assert f(torch.rand(2, 3, 64, 64)).shape == (2, out_dim)


def test_cifar_stem_is_chosen_for_small_images():
    small, _ = build_model(3, 32, encoder="resnet18")
    large, _ = build_model(3, 96, encoder="resnet18")
    assert small.net.conv1.kernel_size == (3, 3) and small.net.conv1.stride == (1, 1)
    assert isinstance(small.net.maxpool, nn.Identity)
    assert large.net.conv1.kernel_size == (7, 7) and large.net.conv1.stride == (2, 2)
    assert isinstance(large.net.maxpool, nn.MaxPool2d)
    forced, _ = build_model(3, 32, encoder="resnet18", stem="imagenet")
    assert forced.net.conv1.kernel_size == (7, 7)


def test_width_multiplies_every_stage():
    f1, _ = build_model(3, 32, encoder="resnet50", width=1)
    f2, _ = build_model(3, 32, encoder="resnet50", width=2)
    assert f2.out_dim == 2 * f1.out_dim == 4096
    assert f2.net.conv1.out_channels == 128 and f2.net.layer4[-1].conv3.out_channels == 4096
    # Convolutions dominate and scale with width squared.
    assert 3.5 < n_params(f2) / n_params(f1) < 4.1
    assert f2(torch.rand(2, 3, 32, 32)).shape == (2, 4096)


@pytest.mark.parametrize("encoder", ["small", "resnet18"])
@pytest.mark.parametrize("channels", [1, 3])
def test_one_or_three_channel_input(encoder, channels):
    f, g = build_model(channels, 16, encoder=encoder)
    h = f(torch.rand(4, channels, 16, 16))
    assert h.shape == (4, f.out_dim) and g(h).shape == (4, defaults.PROJ_DIM)


@pytest.mark.parametrize(("head", "layers"), [("v1", 2), ("v2", 3)])
def test_projection_head_depth_and_batch_norm(head, layers):
    _, g = build_model(3, 16, head=head, proj_hidden_dim=32, proj_dim=16)
    linears = [m for m in g if isinstance(m, nn.Linear)]
    norms = [m for m in g if isinstance(m, nn.BatchNorm1d)]
    relus = [m for m in g if isinstance(m, nn.ReLU)]
    assert len(linears) == len(norms) == layers and len(relus) == layers - 1
    assert [m.out_features for m in linears] == [32] * (layers - 1) + [16]
    assert isinstance(g[-1], nn.BatchNorm1d)  # z is not passed through a ReLU

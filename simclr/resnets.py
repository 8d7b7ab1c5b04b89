"""torchvision's ResNets as SimCLR encoders: ResNet-18, -34 and -50, widened as the paper's
ResNet-50 (2x), (4x), with the CIFAR or the ImageNet stem.

Imported only when one of them is built (`simclr.models.Encoder`): importing torchvision pulls
in torch._dynamo, about 2.5 s of every stage's start-up, which the small encoder never needs.
"""

from __future__ import annotations

import torchvision
from torch import nn

CIFAR_STEM_MAX_SIZE = 64  # stem "auto": the CIFAR stem up to this side, the ImageNet stem above


class _WideResNet(torchvision.models.ResNet):
    """torchvision's ResNet with every stage's channels multiplied by `width` (the SimCLR
    paper's ResNet-50 (2x), (4x)); width 1 is torchvision's network unchanged."""

    def __init__(self, block, layers: list[int], width: int):
        self._width = width  # read by _make_layer, which the parent's __init__ calls
        super().__init__(block, layers)

    def _make_layer(self, block, planes, blocks, stride=1, dilate=False):
        if planes == 64:  # first stage: its input is the (widened) stem's output
            self.inplanes = 64 * self._width
        return super()._make_layer(block, planes * self._width, blocks, stride, dilate)


_TORCHVISION = {
    "resnet18": (torchvision.models.resnet.BasicBlock, [2, 2, 2, 2]),
    "resnet34": (torchvision.models.resnet.BasicBlock, [3, 4, 6, 3]),
    "resnet50": (torchvision.models.resnet.Bottleneck, [3, 4, 6, 3]),
}


def torchvision_resnet(
    name: str, in_channels: int, image_size: int, *, width: int, stem: str
) -> tuple[nn.Module, int]:
    """ResNet `name` (resnet18, resnet34, resnet50) `width` times wider, with the CIFAR or the
    ImageNet `stem` (auto: CIFAR's up to CIFAR_STEM_MAX_SIZE px); and its output dimension."""
    if name not in _TORCHVISION:
        raise ValueError(f"encoder {name!r}: one of small, {', '.join(_TORCHVISION)}")
    block, layers = _TORCHVISION[name]
    net = _WideResNet(block, layers, width)
    stem_width = 64 * width
    cifar = stem == "cifar" or (stem == "auto" and image_size <= CIFAR_STEM_MAX_SIZE)
    if cifar:
        net.conv1 = nn.Conv2d(in_channels, stem_width, 3, 1, 1, bias=False)
        net.maxpool = nn.Identity()
    else:
        net.conv1 = nn.Conv2d(in_channels, stem_width, 7, 2, 3, bias=False)
    net.bn1 = nn.BatchNorm2d(stem_width)
    out_dim = net.fc.in_features * width
    net.fc = nn.Identity()
    return net, out_dim

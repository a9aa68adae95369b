"""SqueezeNet for 32x32 inputs (Iandola et al. 2016, with simple bypass), the model of 002's Table 9.

Our reading, as the baselines' authors build it (bapi/LPP-SGD `models/squeezenet.py`): a 3x3 conv
to 96 channels with BN, ReLU and a 2x2 max-pool; eight Fire modules (squeeze 1x1, then 1x1 and 3x3
expands concatenated, each conv followed by BN and ReLU) with output channels 128, 128, 256, 256,
384, 384, 512, 512 and squeeze channels 16, 16, 32, 32, 48, 48, 64, 64; identity bypasses around
Fire 3, 5 and 7; 2x2 max-pools after Fire 4 and 8; a 1x1 conv to the classes and global average
pooling. Convolutions have biases; initialisation is PyTorch's default, as in theirs.

Parameters: 734,986 for 10 classes (Iandola et al.'s ImageNet SqueezeNet has 1.25 M); `width` scales
every channel count.
"""

from __future__ import annotations

import torch
from torch import nn

from core.inputs import InputSpec

from .registry import register_model

# (output channels, squeeze channels) of Fire 2 to 9.
FIRES = ((128, 16), (128, 16), (256, 32), (256, 32), (384, 48), (384, 48), (512, 64), (512, 64))
BYPASS = (1, 3, 5)  # indices into FIRES whose input is added to their output (Fire 3, 5, 7)
POOL_AFTER = (2, 6)  # max-pool after Fire 4 and Fire 8


def conv_bn_relu(inplanes: int, planes: int, kernel: int) -> nn.Sequential:
    """Conv (with bias), BatchNorm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(inplanes, planes, kernel, padding=kernel // 2),
        nn.BatchNorm2d(planes),
        nn.ReLU(inplace=True),
    )


class Fire(nn.Module):
    """Squeeze to `squeeze` channels, expand to `planes` (half 1x1, half 3x3)."""

    def __init__(self, inplanes: int, planes: int, squeeze: int):
        super().__init__()
        self.squeeze = conv_bn_relu(inplanes, squeeze, 1)
        self.expand_1x1 = conv_bn_relu(squeeze, planes // 2, 1)
        self.expand_3x3 = conv_bn_relu(squeeze, planes // 2, 3)

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.expand_1x1(x), self.expand_3x3(x)], 1)


class SqueezeNet(nn.Module):
    """SqueezeNet with simple bypass on 32x32 images."""

    def __init__(self, num_classes: int, width: float = 1.0):
        super().__init__()
        scale = lambda c: max(2, 2 * round(c * width / 2))  # noqa: E731  (even: the expands split it)
        stem = scale(96)
        self.stem = nn.Sequential(conv_bn_relu(3, stem, 3), nn.MaxPool2d(2, 2))
        fires, inplanes = [], stem
        for planes, squeeze in FIRES:
            fires.append(Fire(inplanes, scale(planes), max(1, round(squeeze * width))))
            inplanes = scale(planes)
        self.fires = nn.ModuleList(fires)
        self.maxpool = nn.MaxPool2d(2, 2)
        self.conv10 = nn.Conv2d(inplanes, num_classes, 1)
        self.avgpool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        x = self.stem(x)
        for index, fire in enumerate(self.fires):
            x = fire(x) + x if index in BYPASS else fire(x)
            if index in POOL_AFTER:
                x = self.maxpool(x)
        return self.avgpool(self.conv10(x)).flatten(1)


@register_model("squeezenet")
def squeezenet(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """SqueezeNet for CIFAR with simple bypass: 002's Table 9 model."""
    return SqueezeNet(spec.num_classes, width)

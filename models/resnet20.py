"""ResNet-20 for 32x32 inputs (He et al. 2016, §4.2), the model of 002's Tables 1-5, 7 and 11.

Our reading, as the baselines' authors build it (bapi/LPP-SGD `models/resnet.py`, `ResNet_cifar`
with depth 20): a 3x3 conv to 16 channels, three stages of three basic blocks at 16, 32 and 64
channels (stride 2 at the start of stages 2 and 3), global average pooling and one linear layer.
Where a block changes shape its shortcut is a 1x1 conv with BatchNorm (He et al.'s option B; the
paper's CIFAR networks use the parameter-free option A, which would save their 2,752 parameters).
Convolutions have no bias. Initialisation as theirs: conv weights N(0, 2 / (k^2 x out channels)),
BatchNorm weight 1 and bias 0, the linear layer PyTorch's default.

Parameters: 272,474 for 10 classes (He et al. report 0.27 M); `width` scales the channels.
"""

from __future__ import annotations

import math

from torch import nn

from core.inputs import InputSpec

from .blocks import BasicBlock, conv1x1
from .registry import register_model

STAGE_CHANNELS = (16, 32, 64)


class Subsample(nn.Module):
    """Every `stride`-th pixel in each spatial dimension: with a 1x1 conv after it, the same map as a
    1x1 conv of that stride.

    Why not the strided conv itself: torch 2.14's CPU backward of a 1x1 stride-2 conv in
    channels_last with 2 or 4 input channels corrupts the heap now and then (docs/performance.md,
    "Constants"). Those are ResNet-20's shortcuts at widths 1/8 and 1/4 (smoke).
    """

    def __init__(self, stride: int):
        super().__init__()
        self.stride = stride

    def forward(self, x):
        return x[:, :, :: self.stride, :: self.stride]


class CifarResNet(nn.Module):
    """ResNet of depth 6n + 2 on 32x32 images: three stages of n basic blocks (models/blocks.py)."""

    def __init__(self, depth: int, num_classes: int, width: float = 1.0):
        super().__init__()
        if (depth - 2) % 6:
            raise ValueError(f"a CIFAR ResNet has depth 6n + 2, not {depth}")
        blocks = (depth - 2) // 6
        channels = [max(1, round(c * width)) for c in STAGE_CHANNELS]
        self.conv1 = nn.Conv2d(3, channels[0], kernel_size=3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels[0])
        self.relu = nn.ReLU(inplace=True)
        stages, inplanes = [], channels[0]
        for index, planes in enumerate(channels):
            stride = 1 if index == 0 else 2
            layers = []
            for b in range(blocks):
                downsample = None
                if b == 0 and (stride != 1 or inplanes != planes):
                    downsample = nn.Sequential(
                        Subsample(stride), conv1x1(inplanes, planes), nn.BatchNorm2d(planes)
                    )
                layers.append(BasicBlock(inplanes, planes, stride if b == 0 else 1, downsample))
                inplanes = planes
            stages.append(nn.Sequential(*layers))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(channels[-1], num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.fc(self.avgpool(x).flatten(1))


@register_model("resnet20")
def resnet20(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-20 for CIFAR (0.27 M parameters): 002's main model."""
    return CifarResNet(20, spec.num_classes, width)

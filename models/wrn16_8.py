"""WideResNet-16x8 for 32x32 inputs (Zagoruyko & Komodakis 2016), the model of 002's Tables 6 and 8.

Our reading, as the baselines' authors build it (bapi/LPP-SGD `models/wideresnet.py`,
`Wide_ResNet(16, 8, 0.3, classes)`): a 3x3 conv to 16 channels, three stages of n = (16 - 4) / 6 = 2
pre-activation blocks (BN-ReLU-conv3x3-dropout-BN-ReLU-conv3x3, dropout 0.3) at 128, 256 and 512
channels, with the stride of 2 on each block's second conv; a 1x1 conv shortcut where the shape
changes; then BN-ReLU, 8x8 average pooling and one linear layer. Convolutions have biases.
Their final BatchNorm is built with `momentum=0.9` (a Torch7 habit; in PyTorch it weights the new
batch by 0.9): kept, since it is what their runs used. Initialisation is PyTorch's default, as in
theirs (their `conv_init` is never applied).

Parameters: 10,965,866 for 10 classes (Zagoruyko & Komodakis report 11.0 M); `width` scales the
channels.
"""

from __future__ import annotations

from torch import nn

from core.inputs import InputSpec

from .registry import register_model

DROPOUT = 0.3


class WideBlock(nn.Module):
    """Pre-activation wide block with dropout between its convolutions."""

    def __init__(self, inplanes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=3, padding=1)
        self.dropout = nn.Dropout(p=DROPOUT)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1)
        self.relu = nn.ReLU()
        self.shortcut = nn.Identity()
        if stride != 1 or inplanes != planes:
            self.shortcut = nn.Conv2d(inplanes, planes, kernel_size=1, stride=stride)

    def forward(self, x):
        out = self.dropout(self.conv1(self.relu(self.bn1(x))))
        out = self.conv2(self.relu(self.bn2(out)))
        return out + self.shortcut(x)


class WideResNet(nn.Module):
    """WideResNet of depth 6n + 4 and widening factor k on 32x32 images."""

    def __init__(self, depth: int, k: int, num_classes: int, width: float = 1.0):
        super().__init__()
        if (depth - 4) % 6:
            raise ValueError(f"a WideResNet has depth 6n + 4, not {depth}")
        blocks = (depth - 4) // 6
        stem, *stages = [max(1, round(c * width)) for c in (16, 16 * k, 32 * k, 64 * k)]
        self.conv1 = nn.Conv2d(3, stem, kernel_size=3, padding=1)
        layers, inplanes = [], stem
        for index, planes in enumerate(stages):
            for b in range(blocks):
                layers.append(WideBlock(inplanes, planes, 2 if index > 0 and b == 0 else 1))
                inplanes = planes
        self.blocks = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(inplanes, momentum=0.9)
        self.relu = nn.ReLU()
        self.avgpool = nn.AdaptiveAvgPool2d(1)  # their 8x8 average pool on 32x32 inputs
        self.linear = nn.Linear(inplanes, num_classes)

    def forward(self, x):
        x = self.relu(self.bn(self.blocks(self.conv1(x))))
        return self.linear(self.avgpool(x).flatten(1))


@register_model("wrn16_8")
def wrn16_8(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """WideResNet-16x8 for CIFAR (11.0 M parameters, dropout 0.3): 002's scalability model."""
    return WideResNet(16, 8, spec.num_classes, width)

"""ResNet-18/50 on torchvision's blocks (models/blocks.py), with a CIFAR stem and a width multiplier
that keeps the depth."""

from __future__ import annotations

import torch
from torch import nn

from core.inputs import InputSpec

from .blocks import BasicBlock, Bottleneck, conv1x1
from .registry import register_model

# Block and blocks per stage: the standard depths (He et al., 2016), as in torchvision.
DEPTHS = {"resnet18": (BasicBlock, (2, 2, 2, 2)), "resnet50": (Bottleneck, (3, 4, 6, 3))}


class ResNet(nn.Module):
    """torchvision's ResNet topology with every stage's width scaled by `width`.

    `stem="cifar"` is the usual 32x32 variant (3x3 conv, stride 1, no max-pool), as in the
    LAP-SGD code the paper builds on; `stem="imagenet"` is the standard 7x7/2 conv + max-pool.
    With width=1 the parameter counts equal torchvision's (imagenet stem).
    """

    def __init__(self, block, layers, num_classes: int, stem: str = "cifar", width: float = 1.0):
        super().__init__()
        widths = [max(1, round(64 * width * 2**i)) for i in range(4)]
        self.inplanes = widths[0]
        if stem == "cifar":
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=3, stride=1, padding=1, bias=False)
            self.maxpool = nn.Identity()
        elif stem == "imagenet":
            self.conv1 = nn.Conv2d(3, widths[0], kernel_size=7, stride=2, padding=3, bias=False)
            self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        else:
            raise ValueError(f"stem must be 'cifar' or 'imagenet', not {stem!r}")
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(block, widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block, widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)
        # The same initialisation as torchvision's ResNet.
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                conv1x1(self.inplanes, planes * block.expansion, stride),
                nn.BatchNorm2d(planes * block.expansion),
            )
        stages = [block(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * block.expansion
        stages += [block(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*stages)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    def pipeline_blocks(self) -> list[nn.Module]:
        """The model as a chain whose composition is `forward` (stem, each residual block, head),
        sharing this model's parameters: where a pipeline may cut it into stages."""
        stem = nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool)
        head = nn.Sequential(self.avgpool, nn.Flatten(1), self.fc)
        return [stem, *self.layer1, *self.layer2, *self.layer3, *self.layer4, head]


def build_resnet(name: str, num_classes: int, image_size: int, width: float = 1.0) -> ResNet:
    """ResNet `name` with the CIFAR stem for inputs up to 64 px, else the ImageNet stem."""
    block, layers = DEPTHS[name]
    return ResNet(block, layers, num_classes, stem="cifar" if image_size <= 64 else "imagenet", width=width)


@register_model("resnet18", narrowest=64, splits=True)
def resnet18(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-18 (BasicBlock, 2-2-2-2)."""
    return build_resnet("resnet18", spec.num_classes, spec.image_size, width)


@register_model("resnet50", narrowest=64, splits=True)
def resnet50(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-50 (Bottleneck, 3-4-6-3)."""
    return build_resnet("resnet50", spec.num_classes, spec.image_size, width)

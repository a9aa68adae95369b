"""The model layer: a registry of model builders keyed by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from benchmarks.errors import did_you_mean

from .resnet import build_resnet


@dataclass(frozen=True)
class InputSpec:
    """What a dataset feeds a model: enough for a builder to pick its stem and head."""

    num_classes: int
    image_size: int = 0  # 0 for non-image inputs
    vocab_size: int = 0  # 0 for non-token inputs


MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(name: str):
    """Decorator: register a builder `(spec: InputSpec, width: float) -> nn.Module` under `name`."""

    def wrap(builder):
        MODELS[name] = builder
        return builder

    return wrap


@register_model("resnet18")
def resnet18(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-18 (BasicBlock, 2-2-2-2)."""
    return build_resnet("resnet18", spec.num_classes, spec.image_size, width)


@register_model("resnet50")
def resnet50(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-50 (Bottleneck, 3-4-6-3)."""
    return build_resnet("resnet50", spec.num_classes, spec.image_size, width)


def build_model(name: str, spec: InputSpec, width: float = 1.0) -> nn.Module:
    """Build model `name` for inputs described by `spec`."""
    if name not in MODELS:
        raise did_you_mean("model", name, MODELS)
    return MODELS[name](spec, width)

"""The model layer: a registry of model builders keyed by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from benchmarks.errors import UserError, did_you_mean

from .lstm import build_lstm
from .resnet import build_resnet


@dataclass(frozen=True)
class InputSpec:
    """What a dataset feeds a model: enough for a builder to pick its stem and head."""

    num_classes: int
    image_size: int = 0  # 0 for non-image inputs
    vocab_size: int = 0  # 0 for non-token inputs


MODELS: dict[str, Callable[..., nn.Module]] = {}
MODEL_INPUTS: dict[str, str] = {}  # name -> "images" | "tokens"


def register_model(name: str, inputs: str = "images"):
    """Decorator: register a builder `(spec: InputSpec, width: float) -> nn.Module` reading `inputs`."""

    def wrap(builder):
        MODELS[name], MODEL_INPUTS[name] = builder, inputs
        return builder

    return wrap


def check_model(name: str, spec: InputSpec) -> None:
    """Reject an unknown model, or one that cannot read the dataset's inputs, with one line."""
    if name not in MODELS:
        raise did_you_mean("model", name, MODELS)
    has = "tokens" if spec.vocab_size else "images"
    if MODEL_INPUTS[name] != has:
        fits = [m for m, kind in MODEL_INPUTS.items() if kind == has]
        raise UserError(
            f"model {name} reads {MODEL_INPUTS[name]}, this dataset holds {has}; use {', '.join(fits)}"
        )


@register_model("resnet18")
def resnet18(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-18 (BasicBlock, 2-2-2-2)."""
    return build_resnet("resnet18", spec.num_classes, spec.image_size, width)


@register_model("resnet50")
def resnet50(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """ResNet-50 (Bottleneck, 3-4-6-3)."""
    return build_resnet("resnet50", spec.num_classes, spec.image_size, width)


@register_model("lstm", inputs="tokens")
def lstm(spec: InputSpec, width: float = 1.0) -> nn.Module:
    """2-layer LSTM (256 hidden) over token sequences, for IMDb."""
    return build_lstm(spec.vocab_size, spec.num_classes, width)


def build_model(name: str, spec: InputSpec, width: float = 1.0) -> nn.Module:
    """Build model `name` for inputs described by `spec`."""
    check_model(name, spec)
    return MODELS[name](spec, width)

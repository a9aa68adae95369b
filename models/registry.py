"""The model registry: `@register_model("name", inputs=...)` on a builder `(spec, width) -> nn.Module`."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from core.errors import UserError
from core.inputs import InputSpec
from core.registry import Registry

ModelBuilder = Callable[[InputSpec, float], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")
MODEL_INPUTS: dict[str, str] = {}  # name -> "images" | "tokens"
NARROWEST: dict[str, int] = {}  # name -> channels (or units) of its narrowest layer at width 1


def register_model(name: str, inputs: str = "images", narrowest: int = 16):
    """Decorator: register a builder `(spec: InputSpec, width: float) -> nn.Module` reading `inputs`,
    whose narrowest layer has `narrowest` channels at width 1 (every layer scales with `width`)."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        MODEL_INPUTS[name] = inputs
        NARROWEST[name] = narrowest
        return MODELS.add(name, builder)

    return wrap


def check_width(name: str, width: float) -> None:
    """Refuse a width that rounds the model's narrowest layer to no channel (the builders would
    silently keep one): one line naming the smallest width that keeps it."""
    narrowest = NARROWEST.get(name, 1)
    if round(narrowest * width) < 1:
        smallest = 0.5 / narrowest
        raise UserError(
            f"width {width:g} leaves {name}'s narrowest layer ({narrowest} channels at width 1) with none; "
            f"use --set width=W with W >= {smallest:.4g}"
        )


def check_model(name: str, spec: InputSpec) -> None:
    """Reject an unknown model, or one that cannot read the dataset's inputs, with one line."""
    MODELS.lookup(name)
    has = "tokens" if spec.vocab_size else "images"
    if MODEL_INPUTS[name] != has:
        fits = [m for m, kind in MODEL_INPUTS.items() if kind == has]
        raise UserError(
            f"model {name} reads {MODEL_INPUTS[name]}, this dataset holds {has}; use {', '.join(fits)}"
        )


def build_model(name: str, spec: InputSpec, width: float = 1.0) -> nn.Module:
    """Build model `name` for inputs described by `spec`."""
    check_model(name, spec)
    return MODELS[name](spec, width)

"""The model registry: `@register_model("name", inputs=...)` on a builder `(spec, width) -> nn.Module`
(`(spec, width, depth)` for a model registered with `deep=True`)."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from core.errors import UserError
from core.inputs import InputSpec
from core.registry import Registry

ModelBuilder = Callable[..., nn.Module]  # (spec, width) or, registered deep, (spec, width, depth)
MODELS: Registry[ModelBuilder] = Registry("model")
MODEL_INPUTS: dict[str, str] = {}  # name -> "images" | "tokens" | "text" (InputSpec.kind)
NARROWEST: dict[str, int] = {}  # name -> channels (or units) of its narrowest layer at width 1
DEEP: set[str] = set()  # models whose builder takes a depth (TrainConfig.depth)
SPLITS: set[str] = set()  # models a pipeline can cut into stages (they define pipeline_blocks())


def register_model(
    name: str, inputs: str = "images", narrowest: int = 16, deep: bool = False, splits: bool = False
):
    """Decorator: register a builder `(spec: InputSpec, width: float) -> nn.Module` reading `inputs`,
    whose narrowest layer has `narrowest` channels at width 1 (every layer scales with `width`);
    with `deep`, the builder takes `depth` too (its number of blocks, 0 for its own); with `splits`,
    its models define `pipeline_blocks()`, a chain of modules whose composition is their forward."""

    def wrap(builder: ModelBuilder) -> ModelBuilder:
        MODEL_INPUTS[name] = inputs
        NARROWEST[name] = narrowest
        if deep:
            DEEP.add(name)
        if splits:
            SPLITS.add(name)
        return MODELS.add(name, builder)

    return wrap


def check_splits(name: str, method: str) -> None:
    """Refuse a pipeline method on a model it cannot cut into stages, naming those it can."""
    if name not in SPLITS:
        raise UserError(
            f"method {method} cuts the model into pipeline stages; {name} has no such cut "
            f'(docs/fidelity.md, "Pipeline methods"); use {", ".join(sorted(SPLITS))}'
        )


def check_depth(name: str, depth: int) -> None:
    """Refuse a depth for a model whose depth is fixed (the paper's ResNets and LSTM)."""
    if depth and name not in DEEP:
        takes = ", ".join(sorted(DEEP)) or "none"
        raise UserError(f"depth is fixed for {name}; --set depth=N changes the depth of: {takes}")


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
    has = spec.kind
    if MODEL_INPUTS[name] != has:
        fits = [m for m, kind in MODEL_INPUTS.items() if kind == has]
        raise UserError(
            f"model {name} reads {MODEL_INPUTS[name]}, this dataset holds {has}; use {', '.join(fits)}"
        )


def build_model(name: str, spec: InputSpec, width: float = 1.0, depth: int = 0) -> nn.Module:
    """Build model `name` for inputs described by `spec` (`depth` 0: the model's own)."""
    check_model(name, spec)
    check_depth(name, depth)
    return MODELS[name](spec, width, depth) if name in DEEP else MODELS[name](spec, width)

"""The model layer: a registry of model builders keyed by name; each module here registers its own
(`@register_model`), and every module is imported, so a new model is one new file."""

import sys

from core.inputs import InputSpec
from core.registry import import_modules

from .registry import (
    MODEL_INPUTS,
    MODELS,
    build_model,
    check_depth,
    check_model,
    check_splits,
    check_width,
    register_model,
)

import_modules(sys.modules[__name__])

__all__ = [
    "InputSpec",
    "MODELS",
    "MODEL_INPUTS",
    "build_model",
    "check_depth",
    "check_model",
    "check_splits",
    "check_width",
    "register_model",
]

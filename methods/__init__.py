"""Training methods: one module per method, each registered with `@register_method`."""

from . import async_backprop, bp  # noqa: F401  (register the methods)
from .base import METHODS, Method, NoConfig, check_devices, get_method, register_method

__all__ = ["METHODS", "Method", "NoConfig", "check_devices", "get_method", "register_method"]

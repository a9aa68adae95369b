"""Training methods: one module per method, each registered with `@register_method`."""

from . import bp  # noqa: F401  (registers the method)
from .base import METHODS, Method, NoConfig, check_devices, get_method, register_method

__all__ = ["METHODS", "Method", "NoConfig", "check_devices", "get_method", "register_method"]

"""Training methods: one module per method, each registered with `@register_method`.

Every module of this package is imported here, so a new method is one new file.
"""

import importlib
import pkgutil

from .base import METHODS, Method, NoConfig, check_devices, get_method, register_method

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["METHODS", "Method", "NoConfig", "check_devices", "get_method", "register_method"]

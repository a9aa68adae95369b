"""Training methods: one module per method, each registered with `@register_method`.

Every module of this package is imported here, so a new method is one new file; what the methods
share lives in the `common` subpackage.
"""

import sys

from core.config import NoConfig
from core.registry import import_modules

from .common.base import METHODS, Method, check_devices, get_method, register_method

import_modules(sys.modules[__name__])

__all__ = ["METHODS", "Method", "NoConfig", "check_devices", "get_method", "register_method"]

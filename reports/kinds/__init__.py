"""Report kinds: one module per kind of table, each registering its renderer with `@register_kind`.

Every module of this package is imported here, so a new kind of report is one new file (a spec
names its kind with `kind=`); what the kinds share is in `reports/render.py`.
"""

import sys

from core.registry import import_modules

from ..render import KINDS, register_kind

import_modules(sys.modules[__name__])

__all__ = ["KINDS", "register_kind"]

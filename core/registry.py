"""The one registration mechanism of the suite: a named registry filled by decorators in the files
that define its entries, and a package that imports its modules so that each entry is one file."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType
from typing import Generic, TypeVar

from .errors import did_you_mean

T = TypeVar("T")


class Registry(dict[str, T], Generic[T]):
    """name -> entry (a method class, a dataset loader, a model builder, a table spec, a perf
    benchmark); `lookup` answers an unknown name with a UserError naming the valid ones."""

    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind

    def add(self, name: str, entry: T) -> T:
        """Register `entry` as `name` (a second entry of the same name is a programming error)."""
        if name in self:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self[name] = entry
        return entry

    def lookup(self, name: str) -> T:
        """The entry registered as `name`; exit 2 naming the valid ones if there is none."""
        if name not in self:
            raise did_you_mean(self.kind, name, self)
        return self[name]


def import_modules(package: ModuleType) -> None:
    """Import every module and subpackage of `package` (so their decorators register their entries;
    an entry too large for one file is a subpackage, like `methods.lapsgd`), except `common` (what
    the entries share) and names that start with `_` (infrastructure, not entries)."""
    for info in pkgutil.iter_modules(package.__path__):
        if info.name != "common" and not info.name.startswith("_"):
            importlib.import_module(f"{package.__name__}.{info.name}")

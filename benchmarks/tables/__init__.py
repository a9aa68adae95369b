"""Table specs: one module per table or figure of the paper, each registering its spec with
`@register_table` on its `jobs` function; every module is imported, so a new table is one new file.

A spec lists the jobs of a profile (models x methods x runs) and carries the paper's numbers.
"""

import re
import sys

from core.registry import import_modules

from .spec import TABLES, TableSpec, get_table, register_table

import_modules(sys.modules[__name__])


def _paper_order(table_id: str) -> tuple[bool, int]:
    """Tables before figures, each by number (table2 before table10)."""
    kind, number = re.fullmatch(r"([a-z]+)(\d+)", table_id).groups()
    return kind != "table", int(number)


for _id in sorted(TABLES, key=_paper_order):  # `list`, `run all` and the report index in the paper's order
    TABLES[_id] = TABLES.pop(_id)

__all__ = ["TABLES", "TableSpec", "get_table", "register_table"]

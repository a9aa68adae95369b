"""Table specs: one module per table or figure of the paper, each registering its spec with
`@register_table` on its `jobs` function; every module is imported, so a new table is one new file.

A spec lists the jobs of a profile (models x methods x runs) and carries the paper's numbers.
"""

import re
import sys

from core.registry import import_modules

from .common.spec import TABLES, TableSpec, get_table, register_table

import_modules(sys.modules[__name__])


def _paper_order(table_id: str) -> tuple[int, int, str]:
    """Tables before figures, each by number (table2 before table10); then the suite's own tables."""
    numbered = re.fullmatch(r"(table|fig)(\d+)", table_id)
    if numbered is None:
        return 2, 0, table_id
    return int(numbered[1] != "table"), int(numbered[2]), table_id


for _id in sorted(TABLES, key=_paper_order):  # `list`, `run all` and the report index in the paper's order
    TABLES[_id] = TABLES.pop(_id)

__all__ = ["TABLES", "TableSpec", "get_table", "register_table"]

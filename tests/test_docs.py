"""The docs say what holds now: tables that code can produce are generated, and the reference
files stay short (their dated entries live in docs/log/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.docs import BLOCKS, generated, with_block
from core.errors import UserError

from .conftest import run_cli

DOCS = Path(__file__).parents[1] / "docs"


def test_the_generated_tables_equal_a_fresh_generation():
    """`python -m benchmarks docs --check`: every generated block as the code produces it now."""
    proc = run_cli("docs", "--check")
    assert proc.returncode == 0, proc.stderr
    for path, text in generated(DOCS).items():
        assert path.read_text() == text, f"{path}: python -m benchmarks docs"


def test_a_stale_table_is_found(tmp_path):
    """The check can fail: a generated block edited by hand differs from its generation."""
    name, (file, produce) = next(iter(BLOCKS.items()))
    text = (DOCS / file).read_text()
    stale = with_block(text, name, produce().replace("|", "¦", 3), tmp_path / file)
    assert stale != text and with_block(stale, name, produce(), tmp_path / file) == text
    with pytest.raises(UserError, match="markers"):
        with_block("no markers here", name, produce(), tmp_path / file)


@pytest.mark.parametrize("name", ["fidelity.md", "performance.md"])
def test_the_reference_files_stay_under_40_kB(name):
    """docs/fidelity.md and docs/performance.md hold what holds now; history is in docs/log/."""
    assert (DOCS / name).stat().st_size < 40_000
    assert (DOCS / "log" / name).exists()

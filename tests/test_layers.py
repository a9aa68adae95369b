"""The layering of docs/design.md, read off the source: which package may import which, and no
module imports one that imports it back (function-level and TYPE_CHECKING imports included)."""

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# package -> the suite's packages it may import
ALLOWED = {
    "core": set(),
    "models": {"core"},
    "datasets": {"core"},
    "methods": {"core"},
    "reports": {"core"},
    "benchmarks": {"core", "models", "datasets", "methods", "reports"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """The suite's modules `path` imports anywhere in it (`from pkg import mod` names the module)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            target = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            subs = [f"{target}.{alias.name}" for alias in node.names if f"{target}.{alias.name}" in modules]
            found.update(subs or [target])
    return {m for m in found if m.split(".")[0] in ALLOWED and m in modules}


def graph() -> dict[str, set[str]]:
    files = [p for pkg in ALLOWED for p in (ROOT / pkg).rglob("*.py")]
    modules = {module_name(p) for p in files}
    return {module_name(p): imports_of(p, modules) for p in files}


def test_packages_import_only_the_layers_below():
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if target.split(".")[0] not in ALLOWED[module.split(".")[0]] | {module.split(".")[0]}
    ]
    assert not wrong, wrong


def test_the_engine_runs_jobs_without_knowing_the_tables():
    """benchmarks/engine runs, stores and plans jobs; the tables describe them through it
    (`build_job`), and the claims' calibration simulates stores of them: neither is imported by
    the engine, so tables -> engine never comes back."""
    wrong = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith("benchmarks.engine")
        for target in targets
        if target.startswith(("benchmarks.tables", "benchmarks.calibration"))
    ]
    assert not wrong, wrong


def test_no_import_circle():
    edges, state, cycles = graph(), {}, []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(edges.get(module, ())):
            if state.get(target) == "open":
                cycles.append(path[path.index(target) :] + [target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert not cycles, cycles


def test_lower_layers_load_without_the_app():
    code = (
        "import models, datasets, methods, sys; "
        "assert not any(m.split('.')[0] == 'benchmarks' for m in sys.modules), 'benchmarks imported'"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_no_file_over_500_lines_and_no_function_over_60():
    """The house's sizes (docs/design.md): a file that grows past 500 lines holds two
    responsibilities, a function past 60 several steps that want names of their own."""
    long_files, long_functions = [], []
    for package in ("benchmarks", "core", "methods", "reports"):
        for path in sorted((ROOT / package).rglob("*.py")):
            text = path.read_text()
            if len(text.splitlines()) > 500:
                long_files.append(str(path.relative_to(ROOT)))
            for node in ast.walk(ast.parse(text)):
                if (
                    isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.end_lineno - node.lineno >= 60
                ):
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not long_files and not long_functions, (long_files, long_functions)

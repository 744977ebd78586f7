"""The house stays readable (issue 18): small functions, no private reaching, one backend.

These are checks of the source itself, read with :mod:`ast`: no function longer than
:data:`MAX_FUNCTION_LINES`; no module importing another module's private (underscore) names;
PyMC, PyTensor and nutpie imported only inside ``bayesreview/backend``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "bayesreview"
MODULES = sorted(PACKAGE.rglob("*.py"))
#: The longest function the house allows, docstring included (issue 18: "about 150").
MAX_FUNCTION_LINES = 150
#: Libraries only the backend may import.
BACKEND_LIBRARIES = ("pymc", "pytensor", "nutpie")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _name(path: Path) -> str:
    return str(path.relative_to(PACKAGE.parent))


def test_the_scan_sees_the_whole_package():
    names = {_name(p) for p in MODULES}
    assert {"bayesreview/fitting.py", "bayesreview/backend/models.py"} <= names
    assert "bayesreview/plots/forest.py" in names


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_function_is_longer_than_the_limit(path):
    long = [
        f"{node.name} ({node.end_lineno - node.lineno + 1} lines)"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert not long, long


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_no_module_imports_another_modules_private_names(path):
    private = [
        f"{node.module}.{alias.name}"
        for node in ast.walk(_tree(path))
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bayesreview")
        for alias in node.names
        if alias.name.startswith("_") and not alias.name.startswith("__")
    ]
    assert not private, private


@pytest.mark.parametrize("path", MODULES, ids=_name)
def test_only_the_backend_imports_pymc_pytensor_and_nutpie(path):
    if path.is_relative_to(PACKAGE / "backend"):
        return
    imported = set()
    for node in ast.walk(_tree(path)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & set(BACKEND_LIBRARIES), sorted(imported & set(BACKEND_LIBRARIES))

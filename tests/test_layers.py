"""Imports point down only: kernels <- core (core, params, validate, reduce) <- store <- {api,
runner, analysis} <- the interface (cli, cli_analysis, figures, __main__). The store (Zarr
layout, chunk files, completion record) knows nothing of specs, runs or analyses; the runner
writes stores and the analysis reads them.

Every module of the package is parsed (ast, nothing imported) and each of its imports, at
module level or inside a function, is resolved to the qbfast module it names.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "qbfast"

#: Layer of each top-level name under qbfast.
LAYERS = {
    "kernels": "kernels",
    "_version": "core", "core": "core", "params": "core", "validate": "core", "reduce": "core",
    "api": "api", "runner": "runner", "store": "store", "analysis": "analysis",
    "cli": "interface", "cli_analysis": "interface", "figures": "interface",
    "__main__": "interface",
}
#: Layer -> the layers it must not import.
FORBIDDEN = {
    "kernels": {"core", "api", "runner", "store", "analysis", "interface"},
    "core": {"api", "runner", "store", "analysis", "interface"},
    "api": {"runner", "store", "analysis", "interface"},
    "runner": {"api", "analysis", "interface"},
    "store": {"api", "runner", "analysis", "interface"},
    "analysis": {"api", "runner", "interface"},
    "interface": set(),
}
#: (importing module, imported module) pairs allowed for now.
KNOWN_EXCEPTIONS: set[tuple[str, str]] = set()


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_package(name: str) -> bool:
    return (PACKAGE.parent / name.replace(".", "/") / "__init__.py").is_file()


def is_module(name: str) -> bool:
    base = PACKAGE.parent / name.replace(".", "/")
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imported_modules(source: str, name: str, package: bool) -> list[tuple[int, str]]:
    """(line, qbfast module) for every import in ``source`` of module ``name``; a name taken
    from a package (``from .. import store``) is that submodule when one exists, else the
    package itself (the root: ``qbfast``)."""
    found = []
    here = name.split(".") if package else name.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names
                      if a.name == "qbfast" or a.name.startswith("qbfast.")]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target != "qbfast" and not target.startswith("qbfast."):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.append((node.lineno, sub if is_module(sub) else target))
    return found


def layer(module: str) -> str | None:
    parts = module.split(".")
    return LAYERS.get(parts[1]) if len(parts) > 1 else None


def violations(source: str, name: str, package: bool = False) -> list[str]:
    """Every upward import of module ``name`` (one line each), known exceptions left out."""
    own = layer(name)
    out = []
    for line, target in imported_modules(source, name, package):
        if (name, target) in KNOWN_EXCEPTIONS:
            continue
        if target == "qbfast":
            out.append(f"{name}:{line} imports the package root qbfast/__init__")
        elif own is not None and layer(target) in FORBIDDEN[own]:
            out.append(f"{name}:{line} ({own}) imports {target} ({layer(target)})")
    return out


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def test_every_module_has_a_layer():
    for path in modules():
        name = module_name(path)
        if name != "qbfast":
            assert layer(name) is not None, f"{name}: add it to LAYERS"


@pytest.mark.parametrize("path", modules(), ids=lambda p: module_name(p))
def test_imports_point_down(path):
    name = module_name(path)
    if name == "qbfast":
        return  # the root itself gathers the public API
    assert violations(path.read_text(encoding="utf-8"), name, path.name == "__init__.py") == []


@pytest.mark.parametrize("source, name, expected", [
    ("from ..runner.spec import Spec", "qbfast.analysis.plots", "imports qbfast.runner.spec"),
    ("def f():\n    from ..api import sweep", "qbfast.analysis.extrema", "imports qbfast.api"),
    ("import qbfast.cli", "qbfast.store.layout", "imports qbfast.cli"),
    ("from ..runner.spec import Spec", "qbfast.store.layout", "imports qbfast.runner.spec"),
    ("from ..analysis import extrema", "qbfast.runner.driver", "imports qbfast.analysis"),
    ("from ..params import TIME", "qbfast.kernels.grid", "imports qbfast.params"),
    ("from .analysis import open_store", "qbfast.reduce", "imports qbfast.analysis"),
    ("from . import sweep", "qbfast.cli", "package root"),
    ("from .. import MODELS", "qbfast.analysis.plots", "package root"),
    ("import qbfast", "qbfast.api", "package root"),
])
def test_the_check_sees_an_upward_import(source, name, expected):
    (found,) = violations(source, name)
    assert expected in found


@pytest.mark.parametrize("source, name", [
    ("from ..core import Grid", "qbfast.analysis.extrema"),
    ("from .. import store", "qbfast.runner.driver"),  # a subpackage, not the root
    ("from ._jit import kernel", "qbfast.kernels.grid"),
    ("from .runner.driver import execute", "qbfast.figures"),
    ("import numpy as np", "qbfast.kernels.grid"),
])
def test_the_check_lets_a_downward_import_pass(source, name):
    assert violations(source, name) == []

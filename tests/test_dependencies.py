"""Every third-party package the code imports is declared in pyproject.toml: the library's,
tasks' and flows' in [project] dependencies, the tests', benchmarks' and tools' there or in the
dev extra. An undeclared import works here only because another package pulled it in."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions

from helpers import ROOT

LIBRARY = ("simclr", "tasks", "flows")
DEV = ("tests", "benchmarks", "tools")


def _name(requirement: str) -> str:
    """The normalised distribution name of a requirement ("scikit-learn>=1.5" -> scikit-learn)."""
    return re.sub(r"[-_.]+", "-", re.match(r"[A-Za-z0-9_.-]+", requirement)[0]).lower()


def _imported(folder: str, module_level: bool = False) -> dict[str, str]:
    """{top-level module: the first file importing it} over the .py files under `folder`; with
    `module_level`, only the imports a module runs when it is imported (not in a function)."""
    found: dict[str, str] = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in tree.body if module_level else ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], str(path.relative_to(ROOT)))
    return found


def _local() -> set[str]:
    """Modules of this repository: its packages and the modules the tests import."""
    return {*LIBRARY, *DEV, *(p.stem for p in (ROOT / "tests").glob("**/*.py"))}


def _undeclared(folders: tuple[str, ...], declared: set[str]) -> list[str]:
    provided_by = packages_distributions()
    missing = []
    for module, where in sorted({k: v for f in folders for k, v in _imported(f).items()}.items()):
        if module in sys.stdlib_module_names or module in _local() or module == "__future__":
            continue
        dists = {_name(d) for d in provided_by.get(module, [module])}
        if not dists & declared:
            missing.append(f"{module} (imported by {where}; from {', '.join(sorted(dists))})")
    return missing


def test_every_imported_package_is_declared():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = project["optional-dependencies"]
    runtime = {_name(r) for r in project["dependencies"]}
    # A feature's extra (e.g. onnx) counts for the library: its imports are made on first use
    optional = {_name(r) for name, reqs in extras.items() if name != "dev" for r in reqs}
    dev = {_name(r) for r in extras["dev"]}
    assert not _undeclared(LIBRARY, runtime | optional), "not in [project] dependencies"
    assert not _undeclared(DEV, runtime | optional | dev), "in neither dependencies nor dev"
    # Without the extra installed, importing the library must still work
    imported_at_once = {k: v for f in LIBRARY for k, v in _imported(f, module_level=True).items()}
    provided_by = packages_distributions()
    extra_only = [
        f"{module} (imported by {where})"
        for module, where in sorted(imported_at_once.items())
        if {_name(d) for d in provided_by.get(module, [module])} <= optional - runtime
    ]
    assert not extra_only, "an extra's package imported at module level, not on first use"

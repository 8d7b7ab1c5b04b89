"""Each DVC stage lists the code it runs: every project module its flow imports, directly or
not, is one of its deps (or under a dep folder). A missing dep would let `dvc repro` skip a
stage whose code changed."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

PACKAGES = ("simclr", "tasks", "flows")


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def project_imports(module: str) -> set[str]:
    """Repository-relative paths of the project files `module` imports, transitively (package
    __init__ files included, as Python runs them)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            path = _module_file(".".join(parts[:i]))
            if path is None:
                continue
            rel = path.relative_to(ROOT).as_posix()
            if rel in seen:
                continue
            seen.add(rel)
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
                elif isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                else:
                    continue
                todo += [n for n in names if n.split(".")[0] in PACKAGES]
    return seen


def _docstring_only(path: Path) -> bool:
    """A package __init__ that holds nothing but its docstring cannot change a result."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _stages():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        yield name, body["cmd"].split()[2], body["deps"]


@pytest.mark.parametrize(("stage", "module", "deps"), list(_stages()), ids=lambda v: str(v)[:20])
def test_every_imported_project_file_is_a_dep(stage, module, deps):
    def covered(path: str) -> bool:
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)

    missing = sorted(
        p for p in project_imports(module) if not covered(p) and not _docstring_only(ROOT / p)
    )
    assert not missing, f"dvc.yaml stage {stage} imports but does not list: {missing}"


@pytest.mark.parametrize(("stage", "module", "deps"), list(_stages()), ids=lambda v: str(v)[:20])
def test_every_listed_module_is_imported(stage, module, deps):
    """The other way round: a listed module the stage no longer imports would re-run it for
    changes that cannot touch its result."""
    imported = project_imports(module)
    stale = sorted(d for d in deps if d.endswith(".py") and d not in imported)
    assert not stale, f"dvc.yaml stage {stage} lists modules it does not import: {stale}"

"""dvc.yaml's deps rerun a stage for exactly the code that can change its outputs, and the
committed dvc.lock records the code as it is.

- Every project module a stage's flow imports, directly or not, is one of its deps (or under a
  dep folder) or declared plumbing (flows/plumbing.py): a missing dep would let `dvc repro`
  skip a stage whose code changed.
- No plumbing module is a dep, and every listed module is imported: either would rerun a stage
  for a change that cannot touch its result.
- Each code dep's md5 in dvc.lock is the file's (or folder's) md5 now, computed by DVC's own
  function (dvc_data's build, as `dvc status` does: for `hash: md5` the plain md5 of a file's
  bytes, no line-ending normalisation; a folder's is the md5 of its sorted list of file md5s,
  .dvcignore applied), and dvc.lock lists the code deps dvc.yaml does. DVC is imported to read
  dvc.yaml and hash; no DVC process runs and nothing is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from helpers import ROOT

from flows.plumbing import PLUMBING

PACKAGES = ("simclr", "tasks", "flows")


def _module_file(name: str) -> Path | None:
    base = ROOT / Path(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported_names(path: Path, module: str) -> list[str]:
    """Every module name `path` (the module `module`) imports, at its top or inside functions
    (a lazy import runs too), relative imports resolved."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}".rstrip(".")
            names += [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.split(".")[0] in PACKAGES]


def project_imports(module: str) -> set[str]:
    """Repository-relative paths of the project files `module` imports, transitively (package
    __init__ files included, as Python runs them)."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        parts = todo.pop().split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
            name = ".".join(parts[:i])
            path = _module_file(name)
            if path is None:
                continue
            rel = path.relative_to(ROOT).as_posix()
            if rel not in seen:
                seen.add(rel)
                todo += _imported_names(path, name)
    return seen


def _docstring_only(path: Path) -> bool:
    """A package __init__ that holds nothing but its docstring cannot change a result."""
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def _stages():
    dvc = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    for name, stage in dvc["stages"].items():
        body = stage.get("do", stage)
        yield name, body["cmd"].split()[2], [str(d) for d in body["deps"]]


STAGES = list(_stages())


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize(("stage", "module", "deps"), STAGES, ids=[s[0] for s in STAGES])
def test_every_imported_project_file_is_a_dep_or_plumbing(stage, module, deps):
    missing = sorted(
        p
        for p in project_imports(module)
        if not _covered(p, deps) and p not in PLUMBING and not _docstring_only(ROOT / p)
    )
    assert not missing, (
        f"dvc.yaml stage {stage} imports but does not list: {missing}; add each to its deps, "
        "or to flows/plumbing.py if it cannot change any output"
    )


@pytest.mark.parametrize(("stage", "module", "deps"), STAGES, ids=[s[0] for s in STAGES])
def test_no_plumbing_is_a_dep(stage, module, deps):
    listed = sorted(p for p in PLUMBING if _covered(p, deps))
    assert not listed, f"dvc.yaml stage {stage} lists plumbing (flows/plumbing.py): {listed}"


@pytest.mark.parametrize(("stage", "module", "deps"), STAGES, ids=[s[0] for s in STAGES])
def test_every_listed_module_is_imported(stage, module, deps):
    """A listed module the stage no longer imports would rerun it for changes that cannot touch
    its result."""
    imported = project_imports(module)
    stale = sorted(d for d in deps if d.endswith(".py") and d not in imported)
    assert not stale, f"dvc.yaml stage {stage} lists modules it does not import: {stale}"


def test_plumbing_names_modules_that_exist_and_that_a_stage_imports():
    imported = set().union(*(project_imports(module) for _, module, _ in STAGES))
    gone = sorted(p for p in PLUMBING if not (ROOT / p).is_file())
    assert not gone, f"flows/plumbing.py names files that do not exist: {gone}"
    unused = sorted(set(PLUMBING) - imported)
    assert not unused, f"flows/plumbing.py names modules no stage imports: {unused}"


# --- dvc.lock against the code ---------------------------------------------------------------


def _dvc_stages():
    """{stage address (prepare@digits): its resolved dvc.yaml stage}, by DVC's own parser, and
    the repository (its file system and .dvcignore)."""
    from dvc.repo import Repo

    with Repo(str(ROOT)) as repo:
        return {s.addressing: s for s in repo.index.stages}, repo


def _is_data(path: str, outs: set[str]) -> bool:
    """An output of a stage, or a folder that holds one or is inside one: not code."""
    return any(path == o or path.startswith(o + "/") or o.startswith(path + "/") for o in outs)


def _md5(path: Path, repo, odb_dir: Path) -> str:
    """DVC's own md5 of a file or folder (dvc_data's build, a dry run: nothing is written)."""
    from dvc_data.hashfile.build import build
    from dvc_data.hashfile.db import HashFileDB

    odb = HashFileDB(repo.fs, str(odb_dir))  # a dry run leaves it empty
    _, _, obj = build(odb, str(path), repo.fs, "md5", dry_run=True, ignore=repo.dvcignore)
    return obj.hash_info.value


def test_dvc_lock_records_the_code_as_committed(tmp_path):
    from dvc.dependency.param import ParamsDependency

    stages, repo = _dvc_stages()
    outs = {o.def_path.rstrip("/") for s in stages.values() for o in s.outs}
    locked = yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]
    gone = sorted(set(locked) - set(stages))
    problems = [f"dvc.lock has stages dvc.yaml does not: {gone}"] if gone else []
    for name, stage in stages.items():
        files = [d for d in stage.deps if not isinstance(d, ParamsDependency)]  # locked apart
        code = {d.def_path for d in files if not _is_data(d.def_path, outs)}
        lock = {d["path"]: d["md5"] for d in locked.get(name, {}).get("deps", [])}
        lock = {p: md5 for p, md5 in lock.items() if not _is_data(p, outs)}
        if set(lock) != code:
            problems.append(
                f"{name}: dvc.yaml's code deps differ from dvc.lock's: "
                f"not locked {sorted(code - set(lock))}, no longer deps {sorted(set(lock) - code)}"
            )
        changed = sorted(p for p in code & set(lock) if _md5(ROOT / p, repo, tmp_path) != lock[p])
        if changed:
            problems.append(f"{name}: code changed since dvc.lock: {changed}")
    assert not problems, "dvc.lock is stale; run `make run` and commit it:\n" + "\n".join(problems)

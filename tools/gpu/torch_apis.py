"""Does the torch (and torchvision) in this interpreter have every API the library calls?

    python3 -m tools.gpu.torch_apis [simclr ...]

Reads the sources under the given folders (default simclr/) with `ast`, resolves every dotted
name that starts from an imported torch or torchvision module (`torch.cuda.is_bf16_supported`,
`F.normalize` after `import torch.nn.functional as F`, `nn.Module` after `from torch import nn`)
against the installed packages, and checks the keyword arguments of each call against the
callee's signature where Python can read it. Prints what is missing, one line each, and exits 1
if anything is; used here against other torch builds, and first thing on the GPU machine
(torch 2.11 there, 2.14 in this project's venv).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("torch", "torchvision")


def aliases(tree: ast.Module) -> dict[str, set[str]]:
    """Local name -> the dotted torch/torchvision paths it stands for (several where functions
    bind it differently, e.g. T = torchvision.transforms or torchvision.transforms.v2)."""
    names: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] in PACKAGES:
                    local = a.asname or a.name.split(".")[0]
                    names.setdefault(local, set()).add(a.name if a.asname else local)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PACKAGES:
            for a in node.names:
                names.setdefault(a.asname or a.name, set()).add(f"{node.module}.{a.name}")
    return names


def dotted(node: ast.expr) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        return ".".join([node.id, *reversed(parts)])
    return None


def resolve(path: str):
    """The object at dotted `path`, importing submodules as needed; AttributeError if none."""
    parts = path.split(".")
    obj = importlib.import_module(parts[0])
    for i, part in enumerate(parts[1:], 1):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            obj = importlib.import_module(".".join(parts[: i + 1]))
    return obj


def uses(files: list[Path]) -> dict[tuple[str, ...], set[str]]:
    """Every torch name used (its possible paths), with the keyword names passed to it."""
    found: dict[tuple[str, ...], set[str]] = {}
    for file in files:
        tree = ast.parse(file.read_text())
        names = aliases(tree)
        calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
        for node in ast.walk(tree):
            name = dotted(node) if isinstance(node, ast.Attribute | ast.Name) else None
            head = name.split(".")[0] if name else None
            if head not in names:
                continue
            paths = tuple(sorted(p + name[len(head) :] for p in names[head]))
            keywords = {k.arg for k in getattr(calls.get(id(node)), "keywords", []) if k.arg}
            found.setdefault(paths, set()).update(keywords)
    return found


def first(paths: tuple[str, ...]):
    """(path, object) of the first of `paths` that resolves, else None."""
    for path in paths:
        try:
            return path, resolve(path)
        except (AttributeError, ImportError):
            pass
    return None


def problems(found: dict[tuple[str, ...], set[str]]) -> list[str]:
    out = []
    for paths, keywords in sorted(found.items()):
        hit = first(paths)
        if hit is None:
            out.append(f"missing: {' or '.join(paths)}")
            continue
        path, obj = hit
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue  # a builtin without a readable signature
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            continue
        out += [f"no keyword {k}= in {path}" for k in sorted(keywords - params.keys())]
    return out


def main(argv: list[str]) -> int:
    import torch

    folders = [ROOT / a for a in argv] or [ROOT / "simclr"]
    files = sorted(f for d in folders for f in d.rglob("*.py"))
    found = uses(files)
    bad = problems(found)
    print(f"torch {torch.__version__}: {len(found)} torch/torchvision names in {len(files)} files")
    for line in bad:
        print(line)
    print("all present" if not bad else f"{len(bad)} problems")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

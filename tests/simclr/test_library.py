"""docs/library.md's snippet runs as written: simclr/ used without params.yaml, DVC or
Prefect, one NT-Xent step that changes the weights."""

import math
import re
import subprocess
import sys

import torch
from helpers import ROOT

DOC = ROOT / "docs" / "library.md"


def snippet() -> str:
    (code,) = re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)
    return code


def run_snippet(code: str) -> dict:
    torch.manual_seed(0)
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    return namespace


def test_the_snippet_takes_one_finite_step_that_changes_the_weights(capsys):
    code = snippet()
    assert len(code.strip().splitlines()) <= 20  # a snippet, not a program
    stepped = run_snippet(code)
    assert math.isfinite(stepped["loss"].item())
    assert capsys.readouterr().out.startswith("NT-Xent ")
    # The same code without the optimizer step: the same initial weights (same seed), unchanged.
    unstepped = run_snippet(code.replace("optimizer.step()", ""))
    before, after = unstepped["encoder"].state_dict(), stepped["encoder"].state_dict()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert changed and any(k.endswith("weight") for k in changed)
    assert not torch.equal(unstepped["head"][0].weight, stepped["head"][0].weight)


def test_the_library_and_the_snippet_import_neither_prefect_nor_dvc():
    check = (
        "import sys, simclr\n"
        f"exec(compile({snippet()!r}, 'library.md', 'exec'))\n"
        "found = sorted({m.partition('.')[0] for m in sys.modules} & {'prefect', 'dvc'})\n"
        "assert not found, found\n"
    )
    r = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr

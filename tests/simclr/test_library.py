"""docs/library.md's snippet runs as written: simclr/ used without params.yaml, DVC or
Prefect, one NT-Xent step that changes the weights."""

import math

import torch
from helpers import LIBRARY_DOC as DOC
from helpers import library_snippet as snippet


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

"""Runs command lines through the real entry points, in this one interpreter (one import of
torch and Prefect for all of them): `python hostile_harness.py CASES.json` prints, as JSON, each
case's exit status, stderr and whether a traceback escaped. The console's commands go through
`flows.console.main`, the `python -m flows.<module>` commands through runpy as `__main__`, with
sys.argv as the shell would set it. Used by tests/pipeline/test_hostile_commands.py."""

from __future__ import annotations

import contextlib
import io
import json
import runpy
import sys
import traceback


def run_case(argv: list[str]) -> dict:
    """One command line: ["simclr", ...] or ["python", "-m", "flows.x", ...]."""
    from flows.console import main

    err, out = io.StringIO(), io.StringIO()
    code, escaped = 0, None
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            if argv[0] == "simclr":
                code = main(argv[1:])
            else:
                sys.argv = [argv[2], *argv[3:]]
                runpy.run_module(argv[2], run_name="__main__", alter_sys=True)
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
        except BaseException:  # what the user would see as a traceback
            escaped = traceback.format_exc()
            code = 1
    return {"code": code, "stderr": err.getvalue(), "stdout": out.getvalue(), "escaped": escaped}


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    results = [run_case(argv) for argv in cases]
    sys.__stdout__.write(json.dumps(results))

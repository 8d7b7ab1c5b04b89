"""The boundary seen from outside: each entry point, started as a real command, answers a
user error in one line and exit status 2 (the boundary itself: tests/simclr/test_errors.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

from simclr.errors import (
    EXIT_ERROR,
)


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-m", "flows.with_server", "/nonexistent/dvc"], "No such file or directory"),
        (["-m", "simclr.launch", "--params", "none.yaml", "--data", "x"], "none.yaml: file not"),
        (["-m", "flows.serve", "--overrides", "{not json"], "argument --overrides: not JSON"),
    ],
    ids=["with_server", "launch", "serve"],
)
def test_entry_points_answer_a_user_error_in_one_line(tmp_path, args, line):
    r = run(args, tmp_path)
    assert r.returncode == EXIT_ERROR, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and line in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1, r.stderr

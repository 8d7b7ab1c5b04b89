"""The boundary seen from outside: each entry point, started as a real command, answers a
user error in one line and exit status 2 (the boundary itself: tests/flows/test_errors.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, pythonpath
from unexpected_guard import UNEXPECTED_LOG

from flows.errors import EXIT_ERROR


def run(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": pythonpath(ROOT), **env},
    )  # fmt: skip


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (["-m", "flows.with_server", "/nonexistent/dvc"], "No such file or directory"),
        (["-m", "flows.launch", "--params", "none.yaml", "--data", "x"], "none.yaml: file not"),
        (["-m", "flows.serve", "--overrides", "{not json"], "argument --overrides: not JSON"),
    ],
    ids=["with_server", "launch", "serve"],
)
def test_entry_points_answer_a_user_error_in_one_line(tmp_path, args, line):
    r = run(args, tmp_path)
    assert r.returncode == EXIT_ERROR, r.stdout + r.stderr
    assert "Traceback" not in r.stderr and line in r.stderr, r.stderr
    assert len([ln for ln in r.stderr.splitlines() if "error:" in ln]) == 1, r.stderr


def test_an_unknown_exception_keeps_its_traceback_and_the_guard_sees_it(tmp_path):
    log = tmp_path / "unexpected.log"  # not the suite's guard: this one is on purpose
    code = "from flows.errors import user_errors\nwith user_errors():\n    {}['missing']\n"
    (tmp_path / "flows").mkdir()  # a program of ours: the guard records only those
    (tmp_path / "flows" / "bug.py").write_text(code)
    r = run(["flows/bug.py"], tmp_path, **{UNEXPECTED_LOG: str(log)})
    assert r.returncode == 1 and "KeyError: 'missing'" in r.stderr, r.stderr
    assert "KeyError: 'missing'" in log.read_text()
    r = run(["-c", "raise KeyError('not ours')"], tmp_path, **{UNEXPECTED_LOG: str(log)})
    assert r.returncode == 1 and "not ours" not in log.read_text()

"""`simclr check` as a real command: the cross-key checks of tasks/params_checks.py in one line
before any stage (tests/tasks/test_params_checks.py: the checks themselves)."""

from __future__ import annotations

import subprocess

from helpers import BIN, TINY_PARAMS, rgb_params_with


def test_simclr_check_says_it_in_one_line_before_any_stage(tmp_path):
    (tmp_path / "params.yaml").write_text(rgb_params_with("faces"))
    r = subprocess.run([str(BIN / "simclr"), "check"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: params.yaml: transfer.datasets has 'faces', prepared with")
    assert r.stderr.count("\n") == 1
    (tmp_path / "params.yaml").write_text(TINY_PARAMS)
    r = subprocess.run([str(BIN / "simclr"), "check"], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout == "params.yaml: ok\n"
    assert r.stderr.startswith("warning: params.yaml: replicas has 2: the test over replicas")

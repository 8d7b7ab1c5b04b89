"""The `simclr` console script: every command listed and documented (what it reads and writes),
`--help` without importing torch or prefect, user errors in one line with exit status 2, and
`simclr run` as `make run`: params checked first, then `dvc repro` with the options given."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers import BIN, ROOT, TINY_PARAMS, copy_code, init_repo, repo_env, runner

from flows.console import COMMANDS, main

HEAVY = ("torch", "prefect", "dvc", "pandas", "numpy")


def test_help_lists_every_command_and_imports_nothing_heavy():
    r = subprocess.run([str(BIN / "simclr"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for name in ("init", "check", "run", "compare", "serve", "embed", "export"):
        assert f"\n  {name} " in r.stdout
    probe = f"import sys, flows.console; print([m for m in {HEAVY!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_says_what_it_reads_and_writes(name, capsys):
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"usage: simclr {name}")
    if name in ("compare", "serve"):  # their modules' own documentation
        assert {"compare": "dvc exp show", "serve": "registers a deployment"}[name] in text
    else:
        assert "Reads" in text and ("writes" in text or "Writes" in text)


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["pretrian"]) == 2
    err = capsys.readouterr().err
    assert "error: unknown command 'pretrian'; one of: init, check, run, compare" in err


@pytest.fixture
def repo(tmp_path):
    """A DVC repository with the pipeline's code, dvc.yaml and tiny params."""
    copy_code(tmp_path)
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text(TINY_PARAMS)
    run = runner(tmp_path, repo_env())
    init_repo(run)
    return tmp_path, run


def test_simclr_run_checks_params_then_runs_dvc_repro_with_the_options_given(repo, prefect_api):
    path, run = repo
    env = repo_env(PREFECT_API_URL=prefect_api)  # with a server, no temporary one is started
    cmd = [str(BIN / "simclr"), "run", "--dry", "-s", "prepare@digits"]
    r = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "params.yaml: ok" in r.stdout
    assert "Running stage 'prepare@digits'" in r.stdout
    assert "> python -m flows.prepare digits" in r.stdout
    assert "prepare@faces" not in r.stdout  # -s reached dvc repro: that stage alone
    (path / "params.yaml").write_text("pretrain:\n  epochz: 3\n")
    r = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Running stage" not in r.stdout
    assert r.stderr.startswith("error: params.yaml: unknown key 'pretrain.epochz'")
    assert r.stderr.count("\n") == 1

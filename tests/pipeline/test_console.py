"""The `simclr` console script as a real command: `--help` without importing torch or prefect,
user errors in one line with exit status 2, and `simclr run` as `make run`: params checked
first, then `dvc repro` with the options given (tests/flows/test_console.py: in-process)."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
from helpers import BIN, ROOT, TINY_PARAMS, copy_code, init_repo, repo_env, runner

HEAVY = ("torch", "prefect", "dvc", "pandas", "numpy")


def test_help_lists_every_command_and_imports_nothing_heavy():
    r = subprocess.run([str(BIN / "simclr"), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for name in ("init", "check", "run", "compare", "serve", "embed", "export"):
        assert f"\n  {name} " in r.stdout
    probe = f"import sys, flows.console; print([m for m in {HEAVY!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert loaded.stdout.strip() == "[]", loaded.stderr


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


def test_simclr_run_by_its_path_runs_the_stages_with_its_own_python(repo, prefect_api):
    # As a newcomer types it after `make install`: .venv/bin/simclr, the venv not on PATH. The
    # stages (`python -m flows.<stage>` in dvc.yaml) must not fall back to a system Python.
    path, _ = repo
    env = {**repo_env(PREFECT_API_URL=prefect_api), "PATH": "/usr/bin:/bin"}
    cmd = [str(BIN / "simclr"), "run", "-s", "prepare@digits"]
    r = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    assert (path / "data" / "prepared" / "digits" / "manifest.parquet").is_file()


def test_embed_with_negative_workers_is_one_usage_line(tmp_path):
    cmd = [str(BIN / "simclr"), "embed", str(tmp_path), str(tmp_path / "h.parquet")]
    r = subprocess.run([*cmd, "--workers", "-1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == (
        "error: argument --workers: -1: allowed: 1 to 256 (simclr embed); see simclr embed --help\n"
    )


def test_serve_refuses_a_bad_cron_before_starting_a_server():
    cmd = [str(BIN / "simclr"), "serve", "--cron", "99 99 * * *"]
    env = {k: v for k, v in repo_env().items() if k != "PREFECT_API_URL"}
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr == (
        'error: argument --cron: Invalid cron string: "99 99 * * *"; write five fields: minute '
        "hour day month weekday, e.g. '0 3 * * *' (simclr serve); see simclr serve --help\n"
    )


@pytest.mark.parametrize(
    "url, line",
    [
        (
            "http://127.0.0.1:9/api",  # nothing listens on the discard port
            "error: the Prefect API at http://127.0.0.1:9/api does not answer ([Errno 111] "
            "Connection refused); start it (prefect server start) or unset PREFECT_API_URL to "
            "run with a temporary local server",
        ),
        (
            "localhost:4200",
            "error: PREFECT_API_URL 'localhost:4200' is not an http(s) URL; set it to the "
            "server's API (e.g. http://127.0.0.1:4200/api) or unset PREFECT_API_URL to run with "
            "a temporary local server",
        ),
    ],
)
def test_simclr_check_checks_the_api_it_is_given(url, line, tmp_path):
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    env = repo_env(PREFECT_API_URL=url)
    r = subprocess.run(
        [str(BIN / "simclr"), "check"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (2, "", [line])


def test_simclr_check_refuses_params_that_dvc_repro_would_miss(tmp_path):
    shutil.copy(ROOT / "dvc.yaml", tmp_path / "dvc.yaml")
    (tmp_path / "params.yaml").write_text("pretrain:\n  epochs: 10\n")  # only what was changed
    env = {k: v for k, v in repo_env().items() if k != "PREFECT_API_URL"}
    r = subprocess.run(
        [str(BIN / "simclr"), "check"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert r.returncode == 2 and r.stdout == "", r.stdout
    assert r.stderr.splitlines() == [
        "error: params.yaml: missing data, datasets, validate, seed, model, evaluate, "
        "pretrain.device, pretrain.precision, replicas, pretrain.dataset, transfer, which "
        "dvc.yaml's stages declare as params (dvc repro stops without them); add them, e.g. "
        "copied from the params.yaml that comes with the pipeline (it lists every key with its "
        "default)"
    ]

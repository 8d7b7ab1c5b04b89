"""Prefect pieces on a real server: transient-only retries, the serve entry point's deployment,
and the override syntax handed to `dvc exp run`."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from helpers import BIN, ROOT
from helpers import api as _api

from flows.pipeline import override_args
from simclr.errors import PipelineError
from tasks.retries import TRANSIENT, is_transient


@pytest.fixture
def on_server(prefect_api, monkeypatch):
    monkeypatch.setenv("PREFECT_API_URL", prefect_api)
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings({PREFECT_API_URL: prefect_api}):
        yield prefect_api


def flaky(exc: BaseException, failures: int):
    """A task that raises `exc` `failures` times, then succeeds; and its attempt counter."""
    from prefect import flow, task

    calls = []

    @task(**{**TRANSIENT, "retry_delay_seconds": 0})
    def step():
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return "done"

    @flow
    def run():
        return step()

    return run, calls


def test_transient_failures_are_retried(on_server):
    run, calls = flaky(OSError(5, "Input/output error"), failures=2)
    assert run() == "done" and len(calls) == 3


def test_user_errors_fail_at_once(on_server):
    run, calls = flaky(PipelineError("params.yaml: bad value"), failures=1)
    with pytest.raises(PipelineError):
        run()
    assert len(calls) == 1


def test_what_counts_as_transient():
    import errno

    for exc in (
        OSError(errno.EIO, "I/O error"),
        OSError(errno.EAGAIN, "try again"),
        TimeoutError(),
        ConnectionResetError(),
        BlockingIOError(errno.EAGAIN, "busy"),
    ):
        assert is_transient(exc), exc
    for exc in (
        PipelineError("x"),
        ValueError(),
        FileNotFoundError(errno.ENOENT, "missing"),
        PermissionError(errno.EACCES, "denied"),
        OSError(errno.ENOSPC, "disk full"),
        OSError(),
    ):
        assert not is_transient(exc), exc


def test_override_values_survive_dvc_parsing(tmp_path):
    """Each value, as DVC's own override parser applies it to a params file, comes back as it
    was: quotes, backslashes, non-ASCII, lists, null and infinity."""
    from dvc.utils.hydra import apply_overrides

    values = {
        "a": 'say "hi"',
        "b": "C:\\data\\",
        "c": "café",
        "d": [0.1, 1],
        "e": None,
        "f": float("inf"),
        "g": "x,y=z",
    }
    path = tmp_path / "params.yaml"
    path.write_text("a: 0\n")
    overrides = [arg for arg in override_args(values) if arg != "-S"]
    apply_overrides(str(path), overrides)
    import yaml

    got = yaml.safe_load(path.read_text())
    assert {k: got[k] for k in values} == values


def test_overrides_become_dvc_set_arguments():
    args = override_args(
        {"pretrain.epochs": 2, "datasets.x": {"source": "npz", "path": "a b.npz"}, "f": [0.1, 1]}
    )
    assert args == [
        "-S", "++pretrain.epochs=2",
        "-S", '++datasets.x.source="npz"',
        "-S", '++datasets.x.path="a b.npz"',
        "-S", "++f=[0.1,1]",
    ]  # fmt: skip


def test_serve_registers_a_scheduled_deployment(prefect_api, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    log = (tmp_path / "serve.log").open("w")
    serve = subprocess.Popen(
        [str(BIN / "python"), "-m", "flows.serve", "--name", "serve-test", "--cron", "30 4 * * *"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                d = _api(prefect_api, "/deployments/name/simclr-pipeline/serve-test")
                break
            except OSError:
                assert serve.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "serve registered no deployment"
                time.sleep(1)
        [schedule] = d["schedules"]
        assert schedule["schedule"]["cron"] == "30 4 * * *" and schedule["active"]
        assert d["parameters"] == {"overrides": {}}
    finally:
        serve.terminate()
        serve.wait(timeout=30)


def test_with_server_runs_the_command_against_one_live_server(tmp_path):
    probe = (
        "import os, sys, urllib.request; url = os.environ['PREFECT_API_URL']; "
        "print(url, urllib.request.urlopen(url + '/health').read().decode()); sys.exit(3)"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(tmp_path)
    r = subprocess.run(
        [str(BIN / "python"), "-m", "flows.with_server", str(BIN / "python"), "-c", probe],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert r.returncode == 3, r.stderr  # the command's exit status comes back
    url, health = r.stdout.split()
    assert url.startswith("http://127.0.0.1:") and health == "true"
    with pytest.raises(OSError):  # stopped afterwards
        _api(url, "/health")


@pytest.mark.parametrize("kind", ["refused", "silent"])
def test_stage_fails_fast_naming_an_unreachable_api(kind, tmp_path):
    """A configured Prefect API that refuses connections, or accepts them and never replies:
    the stage stops within seconds with one line naming the URL, not a traceback or a hang."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    if kind == "silent":
        listener.listen(8)  # the kernel accepts; nobody ever answers
    else:
        listener.close()
    url = f"http://127.0.0.1:{port}/api"
    env = {**os.environ, "PREFECT_API_URL": url}
    start = time.monotonic()
    try:
        r = subprocess.run(
            [str(BIN / "python"), "-m", "flows.report"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        listener.close()
    assert time.monotonic() - start < 30
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        f"error: the Prefect API at {url} does not answer"
    )
    assert "Traceback" not in r.stderr

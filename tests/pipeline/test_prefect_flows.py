"""Prefect pieces on a real server: transient-only retries, the serve entry point's deployment,
`flows.with_server`, and a stage failing fast on an unreachable API."""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from helpers import BIN, ROOT
from helpers import api as _api

from simclr.errors import PipelineError
from tasks.retries import TRANSIENT


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

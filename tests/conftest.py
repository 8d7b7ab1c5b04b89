"""Shared fixtures: analytics off, one real Prefect server per test session, and the guard
against tracebacks. Plain helpers that tests import live in helpers.py."""

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from helpers import BIN, GUARD_DIR, api, free_port
from unexpected_guard import UNEXPECTED_LOG

# A non-interactive shell starts a background job (`pytest ... &`) with SIGINT ignored, and exec
# passes "ignored" on: every stage and worker the tests start would then shrug off Ctrl-C (and
# `prefect worker start` off the SIGINT it forwards on SIGTERM). A handled signal is reset to the
# default at exec, so with Python's own handler here the children get Ctrl-C as a terminal gives it.
signal.signal(signal.SIGINT, signal.default_int_handler)

for key, value in {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DVC_NO_ANALYTICS": "1",
}.items():
    os.environ[key] = value

# The guard (tests/guard/): every Python process a test starts appends to this file the
# traceback that ends one of our programs, a bug of ours. Set here, so that every command a test
# starts (its environment is this one's, PYTHONPATH from helpers.pythonpath) reports to it;
# `no_unexpected_errors` fails the test during which one was written.
GUARD = Path(tempfile.mkdtemp(prefix="simclr-guard-")) / "unexpected.log"
GUARD.touch()
os.environ[UNEXPECTED_LOG] = str(GUARD)
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(GUARD_DIR), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
)


@pytest.fixture(autouse=True)
def no_unexpected_errors():
    """No test may make an entry point end in a traceback; a test that does on purpose points
    SIMCLR_UNEXPECTED_ERRORS elsewhere."""
    size = GUARD.stat().st_size
    yield
    with GUARD.open() as f:
        f.seek(size)
        found = f.read()
    if found:
        pytest.fail(f"an entry point ended in an unexpected exception:\n{found[-4000:]}")


@pytest.fixture(scope="session")
def prefect_api(tmp_path_factory):
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        # Scheduled runs appear within seconds of a deployment, not the default minute.
        "PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS": "5",
    }
    log = (home / "server.log").open("w")
    server = subprocess.Popen(
        [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 90
    while True:
        try:
            api(url, "/health")
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail("Prefect server did not start:\n" + (home / "server.log").read_text())
            time.sleep(0.5)
    yield url
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(scope="session")
def report_fixture_dir(tmp_path_factory, prefect_api):
    """A directory holding tiny stage outputs and the report rendered from them."""
    from report_fixture import render_reports

    return render_reports(tmp_path_factory.mktemp("report"), prefect_api)

"""Shared fixtures: analytics off, one real Prefect server per test session, and the guard
against tracebacks. Plain helpers that tests import live in helpers.py."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import torch
from helpers import BIN, GUARD_DIR, MODEL, api, free_port, photo_files, tiny_checkpoint
from unexpected_guard import UNEXPECTED_LOG

from simclr.checkpoint import save_checkpoint
from simclr.models import build_model

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


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A tiny RGB encoder checkpoint (tests/simclr/test_embed.py, tests/pipeline/test_embed.py)."""
    return tiny_checkpoint(tmp_path_factory.mktemp("ckpt") / "simclr.pt", channels=3)


@pytest.fixture
def photos(tmp_path):
    """root/<class>/<photo>: two classes of real images, one of them in nested folders' style
    names and formats (PNG, JPEG, GIF, TIFF, a grayscale PNG)."""
    root = tmp_path / "photos"
    for i, path in enumerate(photo_files()):
        folder = root / ("cats and coffee" if i % 2 else "others")
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, folder / path.name)
    return root


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    """A real checkpoint of MODEL at a seeded init (test_checkpoint.py, test_faults.py)."""
    torch.manual_seed(0)
    encoder, head = build_model(1, 8, **MODEL)
    path = tmp_path_factory.mktemp("checkpoint") / "simclr.pt"
    return save_checkpoint(path, encoder, head, MODEL, 8, {"dataset": "digits"})


# The fast lane's promise: a test outside tests/pipeline/ starts none of our commands (no stage,
# server, git, dvc, browser or other Python). An audit hook sees every subprocess.Popen (also
# a library's own probes, such as ctypes running ldconfig, which are not ours and pass); it
# cannot be removed, so it records only while a unit test runs.
PIPELINE = Path(__file__).parent / "pipeline"
OURS = {"git", "dvc", "prefect", "simclr", "chromium", "sh", "bash", "unshare", "torchrun"}
_commands: list[str] | None = None


def _ours(executable) -> bool:
    path = Path(str(executable))
    return path.name in OURS or path.name.startswith("python") or path.parent == BIN


def _record_commands(event: str, args: tuple) -> None:
    if event != "subprocess.Popen" or _commands is None:
        return
    executable, argv = args[0], args[1]
    argv = [argv] if isinstance(argv, str | bytes) else list(argv or [])
    if _ours(executable or (argv[0] if argv else "")):
        _commands.append(" ".join(map(str, argv))[:200])


sys.addaudithook(_record_commands)


@pytest.fixture(autouse=True)
def unit_tests_start_no_commands(request):
    global _commands
    if request.path.is_relative_to(PIPELINE):
        yield
        return
    _commands = []
    try:
        yield
    finally:
        started, _commands = _commands, None
    if started:
        pytest.fail(f"a unit test started a command (move it to tests/pipeline/): {started}")


@pytest.fixture(autouse=True)
def one_torch_thread_in_unit_tests(request):
    """Unit tests run torch on one thread. Their models are tiny, and where the cores are
    shared (CI runners, other jobs) torch's OpenMP threads wait on each other at every op: with
    two threads on 2 busy cores, tests/simclr/test_train.py took 24-65 s, against 3.6 s with
    one. A test that sets its own thread count (params' `threads`) still does."""
    if not request.path.is_relative_to(PIPELINE):
        torch.set_num_threads(1)
    yield

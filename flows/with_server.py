"""A local Prefect server owned by the process that needs it, and `python -m flows.with_server
dvc repro`: run a command with one such server for all of it.

Without PREFECT_API_URL every stage needs a server. Prefect's own temporary one shares the
stage's process group (so a Ctrl-C at the terminal kills it first, and the stage then retries a
dead API for minutes) and outlives a stage killed by SIGKILL or the kernel's OOM killer,
holding the caller's stdout open. `local_server` starts the same server (Prefect's API app
under uvicorn, UI and background services off, the same PREFECT_HOME database) in a session of
its own, with its output in a log file, and with a parent-death signal: the kernel stops it
when its owner dies, however. A stage runs with one of its own (flows/cli.py); `make run` runs
`dvc repro` under `python -m flows.with_server`, which starts one for the whole run (~5 s saved
per stage). With PREFECT_API_URL set, that server is used and none is started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from flows.errors import EXIT_INTERRUPTED, user_errors
from simclr.errors import PipelineError
from simclr.processes import with_parent_death

STARTUP_SECONDS = 120
STOP_SECONDS = 10
# What Prefect sets for its temporary server: no UI, no background services.
EPHEMERAL = {"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as r:
            return json.loads(r.read()) is True
    except (OSError, ValueError):
        return False


def _server_command(port: int) -> list[str]:
    import prefect

    return [
        sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
        "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
        "--port", str(port), "--log-level", "error", "--lifespan", "on",
    ]  # fmt: skip


def _stop(server: subprocess.Popen) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=STOP_SECONDS)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        server.kill()
        server.wait()


@contextmanager
def local_server() -> Iterator[str]:
    """A Prefect server on a free loopback port for the duration of the block: its API URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            with_parent_death(_server_command(port), signal.SIGTERM),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, **EPHEMERAL},
            start_new_session=True,  # a Ctrl-C at the terminal reaches its owner, not it
        )
        try:
            deadline = time.monotonic() + STARTUP_SECONDS
            while not _healthy(url):
                if server.poll() is not None or time.monotonic() > deadline:
                    log.seek(0)
                    tail = log.read().decode(errors="replace").strip().splitlines()[-1:]
                    raise PipelineError(
                        f"a local Prefect server did not start on {url} ({' '.join(tail)}); "
                        "set PREFECT_API_URL to a running server (prefect server start)"
                    )
                time.sleep(0.2)
            yield url
        finally:
            _stop(server)


def run_with_server(argv: list[str]) -> int:
    """Run `argv` against a local server (or the PREFECT_API_URL one); its exit status. A
    Ctrl-C reaches the command from the terminal: this process waits for it to stop, then stops
    the server; a SIGTERM is passed on to it."""
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(argv)
    with local_server() as url:
        print(f"prefect server for this run: {url}", file=sys.stderr, flush=True)
        command = subprocess.Popen(argv, env={**os.environ, "PREFECT_API_URL": url})
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the command handles it
        signal.signal(signal.SIGTERM, lambda *_: command.terminate())
        try:
            rc = command.wait()
        finally:
            signal.signal(signal.SIGINT, previous)
    return EXIT_INTERRUPTED if rc == -signal.SIGINT else rc


@user_errors()
def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m flows.with_server <command> [args...]", file=sys.stderr)
        return 2
    return run_with_server(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

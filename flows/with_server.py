"""Run a command with one Prefect server for all of it: `python -m flows.with_server dvc repro`.

Without PREFECT_API_URL every stage starts Prefect's temporary server (~5 s each, 11 stages);
this starts one local server (same PREFECT_HOME, so the runs stay in its database for the UI
later), runs the command against it and stops it. With PREFECT_API_URL set it just runs the
command.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 120


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


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m flows.with_server <command> [args...]", file=sys.stderr)
        return 2
    if os.environ.get("PREFECT_API_URL"):
        return subprocess.call(argv)
    # A plain SIGTERM would skip the `finally` below and orphan the server.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    prefect = str(Path(sys.executable).parent / "prefect")
    server = subprocess.Popen(
        [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not _healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                print(f"error: prefect server did not start on {url}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        print(f"prefect server for this run: {url}", file=sys.stderr, flush=True)
        return subprocess.call(argv, env={**os.environ, "PREFECT_API_URL": url})
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

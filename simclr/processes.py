"""A child process whose output is handed on line by line as it comes (DVC under the pipeline
flow, torchrun under the pretrain stage)."""

from __future__ import annotations

import subprocess
from collections import deque
from collections.abc import Callable


def run_streaming(
    cmd: list[str], on_line: Callable[[str], None], keep: int = 400, **popen
) -> tuple[int, list[str]]:
    """Run `cmd` with stderr merged into stdout, pass each non-empty line to `on_line`, and
    return the exit status and the last `keep` lines. If reading stops early (an exception,
    a cancelled run), the child gets SIGTERM, then SIGKILL after 30 s: it must not run on
    unread, holding a lock or a GPU."""
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",  # a stray non-UTF-8 byte must not stop the stream
        bufsize=1,
        **popen,
    )
    tail: deque[str] = deque(maxlen=keep)
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            line = line.rstrip()
            if line:
                on_line(line)
                tail.append(line)
        rc = proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    return rc, list(tail)

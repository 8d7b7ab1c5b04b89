"""Child processes: one whose output is handed on line by line as it comes (DVC under the
pipeline flow, torchrun under the pretrain stage), and commands that die with their parent (a
stage's Prefect server, torchrun), so that no kill of ours leaves one running behind."""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable

EXEC_WITH_PARENT = "--exec-with-parent"
EXEC_PID = "SIMCLR_EXEC_PID"  # the pid of a command started by with_parent_death, set for it


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: the kernel sends `sig` to this process when its parent dies (even by SIGKILL or
    the kernel's OOM killer). torchrun starts its workers in sessions of their own, so without
    this a killed launcher leaves them training on, writing the resumable state that the rerun
    reads. The setting survives exec."""
    if _prctl is not None:
        _prctl(1, int(sig))  # PR_SET_PDEATHSIG


_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def with_parent_death(cmd: list[str], sig: int = signal.SIGTERM) -> list[str]:
    """`cmd` (an absolute executable and its arguments) behind a tiny wrapper that sets the
    parent-death signal, then becomes `cmd` (same pid): when this process dies, however, the
    kernel sends `sig` to the command. (A wrapper rather than Popen's preexec_fn, which is not
    safe in a process with threads.)"""
    return [sys.executable, "-m", "simclr.processes", EXEC_WITH_PARENT, str(os.getpid()),
            str(int(sig)), *cmd]  # fmt: skip


def _exec_with_parent(parent: int, sig: int, cmd: list[str]) -> int:
    die_with_parent(sig)  # kept across exec
    if os.getppid() != parent:  # the parent died before the line above
        return 1
    os.environ[EXEC_PID] = str(os.getpid())  # exec keeps the pid
    os.execv(cmd[0], cmd)
    return 1  # not reached


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


if __name__ == "__main__" and sys.argv[1:2] == [EXEC_WITH_PARENT]:
    sys.exit(_exec_with_parent(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4:]))

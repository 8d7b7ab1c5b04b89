"""tasks/retries.py: which failures are transient (retried) and which are the user's (not)."""

from __future__ import annotations

from simclr.errors import PipelineError
from tasks.retries import is_transient


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

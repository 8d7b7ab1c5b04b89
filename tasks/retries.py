"""Retries for transient failures only: a flaky disk or network (I/O errors, timeouts, a busy
resource) is tried again with backoff; a user's mistake (PipelineError: bad params, bad data)
fails at once, since retrying cannot fix it."""

from __future__ import annotations

import errno

from prefect.tasks import exponential_backoff

from simclr.errors import PipelineError

RETRY_DELAYS = exponential_backoff(backoff_factor=2)(3)  # 2, 4, 8 s


# OS errors that a later try can outlive; a missing file, a permission or a full disk cannot.
TRANSIENT_ERRNOS = {
    errno.EAGAIN,
    errno.EBUSY,
    errno.EINTR,
    errno.EIO,
    errno.ETIMEDOUT,
    errno.ECONNRESET,
    errno.ECONNREFUSED,
    errno.ESTALE,
}


def is_transient(exc: BaseException | None) -> bool:
    if exc is None or isinstance(exc, PipelineError):
        return False
    if isinstance(exc, TimeoutError | ConnectionError | BlockingIOError):
        return True
    return isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS


def _retry_condition(task, task_run, state) -> bool:
    try:
        state.result()
    except BaseException as e:  # the failed state re-raises the task's exception
        return is_transient(e)
    return False


# Keyword arguments for @task: `@task(name=..., **TRANSIENT)`.
TRANSIENT = {
    "retries": len(RETRY_DELAYS),
    "retry_delay_seconds": RETRY_DELAYS,
    "retry_condition_fn": _retry_condition,
}

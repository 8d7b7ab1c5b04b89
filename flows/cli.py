"""Entry points: the boundary every `main()` of the pipeline runs inside, and the runner shared
by the stage flows (validate params first, then run the flow against a Prefect API).

`boundary()` (a `with` block or a decorator) is flows.errors.user_errors plus Prefect's log
handlers told to leave out the traceback of such an error: any error a user can cause or fix is
one line, `error: <what> (<where>); <what to do>`, and exit status 2; Ctrl-C one line and 130;
a bug of ours keeps its traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from flows.errors import explain, user_errors
from flows.with_server import local_server
from simclr.config import load_params
from simclr.errors import PipelineError
from simclr.provenance import git_commit

PARAMS = "params.yaml"


class _HideUserErrorTraceback(logging.Filter):
    """An error the user can fix says what to do in one line; its traceback would bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if error is not None and (isinstance(error, KeyboardInterrupt) or explain(error)):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_user_errors() -> None:
    import prefect  # noqa: F401  (configures logging handlers on import)

    hide = _HideUserErrorTraceback()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(hide)


@contextmanager
def boundary() -> Iterator[None]:
    """The boundary of an entry point; see the module docstring."""
    _quiet_user_errors()
    with user_errors():
        yield


def run_tags() -> list[str]:
    """Tags of every flow run: the git commit, and the DVC experiment when `dvc exp run` is
    running the stage (DVC sets DVC_EXP_NAME for it)."""
    commit = git_commit()
    tags = [f"git:{commit[:12]}"] if commit else []
    if os.environ.get("DVC_EXP_NAME"):
        tags.append(f"exp:{os.environ['DVC_EXP_NAME']}")
    return tags


API_TIMEOUT_SECONDS = 5


LOCAL_SERVER = "or unset PREFECT_API_URL to run with a temporary local server"


def check_api(otherwise: str = LOCAL_SERVER) -> None:
    """Fail fast, in one line, when a Prefect API is configured but does not answer: otherwise
    Prefect fails later with a traceback, or waits on a host that never replies. `otherwise`:
    the advice besides starting it."""
    import urllib.request
    from urllib.parse import urlsplit

    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return  # no server configured: the stage starts its own (prefect_api)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise PipelineError(
            f"PREFECT_API_URL {url!r} is not an http(s) URL; set it to the server's API (e.g. "
            f"http://127.0.0.1:4200/api) {otherwise}"
        )
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=API_TIMEOUT_SECONDS):
            return
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise PipelineError(
            f"the Prefect API at {url} does not answer ({reason}); start it (prefect server "
            f"start) {otherwise}"
        ) from None


@contextmanager
def prefect_api() -> Iterator[None]:
    """The configured Prefect API, checked; without one, a local server owned by this process
    (flows/with_server.py): it survives a Ctrl-C at the terminal long enough to record the
    interrupted run, and dies with this process however it ends."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if PREFECT_API_URL.value():
        check_api()
        yield
        return
    with local_server() as url, temporary_settings({PREFECT_API_URL: url}):
        try:
            yield
        finally:
            # The run's last logs and events reach the server before it stops.
            for worker in (APILogWorker, EventsWorker):
                worker.drain_all(timeout=5)


def run_stage(
    flow: Callable[..., object], *args: str, check: Callable[..., object] | None = None
) -> None:
    """Run `flow(*args, params=...)`; `check(params, *args)` refuses bad arguments first, before
    a Prefect server is started."""
    from prefect import tags

    with boundary():
        params = load_params(PARAMS)
        if check is not None:
            check(params, *args)
        with prefect_api(), tags(*run_tags()):
            flow(*args, params=params)


def stage_arg(usage: str) -> str:
    """The single positional argument of a per-dataset stage."""
    return stage_args(usage, 1)[0]


def stage_args(usage: str, required: int, optional: int = 0) -> list[str]:
    """The positional arguments of a stage: `required` of them, then up to `optional` more."""
    args = sys.argv[1:]
    if not required <= len(args) <= required + optional:
        print(f"error: {len(args)} arguments given; usage: {usage}", file=sys.stderr)
        sys.exit(2)
    return args

"""Entry point shared by the stage flows: validate params first, run the flow, and turn a
PipelineError into one line on stderr and a non-zero exit."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable

from simclr.config import load_params
from simclr.errors import PipelineError
from simclr.provenance import git_commit

PARAMS = "params.yaml"


class _HideUserErrorTraceback(logging.Filter):
    """A PipelineError's message says what to do; its traceback would only bury it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], PipelineError):
            record.exc_info = None
            record.exc_text = None
        return True


def _quiet_user_errors() -> None:
    import prefect  # noqa: F401  (configures logging handlers on import)

    hide = _HideUserErrorTraceback()
    for name in ("", "prefect", "prefect.flow_runs", "prefect.task_runs"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(hide)


def run_tags() -> list[str]:
    """Tags of every flow run: the git commit, and the DVC experiment when `dvc exp run` is
    running the stage (DVC sets DVC_EXP_NAME for it)."""
    commit = git_commit()
    tags = [f"git:{commit[:12]}"] if commit else []
    if os.environ.get("DVC_EXP_NAME"):
        tags.append(f"exp:{os.environ['DVC_EXP_NAME']}")
    return tags


API_TIMEOUT_SECONDS = 5


def check_api() -> None:
    """Fail fast, in one line, when a Prefect API is configured but does not answer: otherwise
    Prefect fails later with a traceback, or waits on a host that never replies."""
    import urllib.request

    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        return  # no server configured: Prefect starts a temporary local one
    try:
        with urllib.request.urlopen(url.rstrip("/") + "/health", timeout=API_TIMEOUT_SECONDS):
            return
    except (OSError, ValueError) as e:
        reason = getattr(e, "reason", e)
        raise PipelineError(
            f"the Prefect API at {url} does not answer ({reason}); start it (prefect server "
            "start) or unset PREFECT_API_URL to run with a temporary local server"
        ) from None


def run_stage(flow: Callable[..., object], *args: str) -> None:
    _quiet_user_errors()
    from prefect import tags

    try:
        check_api()
        params = load_params(PARAMS)
        with tags(*run_tags()):
            flow(*args, params=params)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def stage_arg(usage: str) -> str:
    """The single positional argument of a per-dataset stage."""
    return stage_args(usage, 1)[0]


def stage_args(usage: str, required: int, optional: int = 0) -> list[str]:
    """The positional arguments of a stage: `required` of them, then up to `optional` more."""
    args = sys.argv[1:]
    if not required <= len(args) <= required + optional:
        print(f"usage: {usage}", file=sys.stderr)
        sys.exit(2)
    return args

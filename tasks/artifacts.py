"""What each stage shows in the Prefect UI: a markdown summary and a table of its numbers, and
for long work a progress artifact."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable

from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

log = logging.getLogger(__name__)


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes."""
    return "-".join(re.sub(r"[^a-z0-9-]+", "-", p.lower()).strip("-") for p in parts)


def publish(key: str, summary: str, markdown: str, rows: list[dict] | None = None) -> None:
    """`key` (markdown) and `key`-metrics (table, when there are rows), both versioned by key
    on the server so that the latest run of a stage is one click away."""
    create_markdown_artifact(key=key, markdown=markdown, description=summary)
    if rows:
        create_table_artifact(key=f"{key}-metrics", table=rows, description=summary)


def progress_artifact(key: str, description: str) -> Callable[[float, str], None]:
    """A progress artifact `key` at 0 %, and the function that moves it: (percent, what is done).

    Progress is shown, not relied on: a create or update the server refuses (busy, gone) is
    logged and skipped rather than failing the work it reports on."""
    artifact = _best_effort(create_progress_artifact, 0.0, key=key, description=description)

    def update(percent: float, done: str) -> None:
        if artifact is not None:
            _best_effort(update_progress_artifact, artifact, percent, description=done)

    return update


def _best_effort(call: Callable, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except Exception as e:  # any failure of the API client: see progress_artifact
        log.warning("progress artifact not updated (%s: %s)", type(e).__name__, e)
        return None

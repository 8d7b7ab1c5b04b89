"""What each stage shows in the Prefect UI: a markdown summary and a table of its numbers."""

from __future__ import annotations

import re

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def artifact_key(*parts: str) -> str:
    """Prefect artifact keys allow lowercase letters, digits and dashes."""
    return "-".join(re.sub(r"[^a-z0-9-]+", "-", p.lower()).strip("-") for p in parts)


def publish(key: str, summary: str, markdown: str, rows: list[dict] | None = None) -> None:
    """`key` (markdown) and `key`-metrics (table, when there are rows), both versioned by key
    on the server so that the latest run of a stage is one click away."""
    create_markdown_artifact(key=key, markdown=markdown, description=summary)
    if rows:
        create_table_artifact(key=f"{key}-metrics", table=rows, description=summary)

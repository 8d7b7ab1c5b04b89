"""Figures for people: PNG files under reports/figures/, every one written by `save_png`.

One module per stage that draws (views: pretrain; evaluation: evaluate; report: report), so
that a stage depends on the code of its own figures only: restyling the report's figures does
not re-run pretraining. Display names come from tasks/labels.py, paths from tasks/paths.py.
"""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

from simclr.io import write_atomic

DPI = 100


def plain(text: object, limit: int | None = None) -> str:
    """`text` (a class name, anything a user controls) as matplotlib shows it literally, cut to
    `limit` characters: a pair of `$` would start mathtext (`$\\foo$` fails to parse, `$x^2$`
    renders as math), so every `$` is escaped."""
    return str(text)[:limit].replace("$", r"\$")


def save_png(fig: Figure, path: Path, layout: tuple[float, float, float, float] = (0, 0, 1, 1)):
    """Lay `fig` out inside `layout` (figure fractions: left, bottom, right, top) and write it
    to `path` as PNG, atomically."""
    fig.tight_layout(rect=layout)
    return write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=DPI))

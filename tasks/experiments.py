"""The comparison of DVC experiments: `dvc exp show --json`, flattened into one row per
experiment with the params that vary and the headline metrics."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from simclr.errors import PipelineError
from tasks.dotted import flatten
from tasks.labels import fraction_label
from tasks.paths import EVALUATE, METRICS, PRETRAIN_METRICS, TRANSFER

# Headline metrics: (metrics file, path in it) -> column name.
HEADLINES = {
    (PRETRAIN_METRICS.as_posix(), ("loss",)): "pretrain loss",
    (PRETRAIN_METRICS.as_posix(), ("knn_accuracy",)): "pretrain kNN",
}


def dvc_exp_show(repo: Path, all_commits: bool = False) -> list[dict]:
    """`dvc exp show --json` in `repo`, parsed: HEAD and its experiments, or with
    `all_commits` every commit's."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    cmd += ["--all-commits"] if all_commits else []
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise PipelineError(f"dvc exp show failed in {repo}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)


def _entries(exp_show: list[dict]):
    """(name, rev, data) of the workspace, every baseline commit and every experiment on it."""
    for baseline in exp_show:
        if baseline.get("rev") == "workspace":
            yield "workspace", "", baseline.get("data")  # uncommitted: no rev
        else:
            yield baseline.get("name") or baseline["rev"][:7], baseline["rev"], baseline["data"]
        for exp in baseline.get("experiments") or []:
            for rev in exp.get("revs") or []:
                yield rev.get("name") or rev["rev"][:7], rev["rev"], rev["data"]


def _evaluated_on(path: str) -> str | None:
    """ "evaluate" for the evaluate stage's metrics file, the dataset for a transfer stage's,
    None for any other file."""
    path = Path(path)
    if path.name != METRICS:
        return None
    if path.parent == EVALUATE:
        return "evaluate"
    return path.parent.name if path.parent.parent == TRANSFER else None


def _headlines(metrics: dict) -> dict:
    out = {}
    for path, found in sorted(metrics.items()):
        data = found.get("data") or {}
        for (file, keys), column in HEADLINES.items():
            if path == file:
                value = data
                for k in keys:
                    value = value.get(k, {}) if isinstance(value, dict) else {}
                if isinstance(value, int | float):
                    out[column] = value
        # Linear probe of SimCLR at each fraction, on the pretraining set and every transfer.
        where = _evaluated_on(path)
        if where is not None:
            for fraction, cell in (data.get("linear", {}).get("simclr") or {}).items():
                out[f"{where} linear {fraction_label(fraction)}"] = cell.get("mean")
    return out


def experiments_table(exp_show: list[dict]) -> list[dict]:
    """One row per commit or experiment that has metrics: name, rev, the params that differ
    between rows, and the headline metrics."""
    rows, params = [], []
    for name, rev, data in _entries(exp_show):
        if not data or not data.get("metrics"):
            continue
        flat = {}
        for found in (data.get("params") or {}).values():
            flat.update(
                {
                    k: json.dumps(v) if isinstance(v, list) else v  # one cell in a table
                    for k, v in flatten(found.get("data") or {}).items()
                }
            )
        params.append(flat)
        rows.append({"experiment": name, "rev": rev[:7], **_headlines(data["metrics"])})
    keys = sorted({k for p in params for k in p})
    varying = [k for k in keys if len({json.dumps(p.get(k)) for p in params}) > 1]
    return [
        {"experiment": r["experiment"], "rev": r["rev"], **{k: p.get(k) for k in varying}, **r}
        for r, p in zip(rows, params, strict=True)
    ]


def metric_columns(rows: list[dict]) -> list[str]:
    """The headline-metric columns present in `rows`, in a stable order."""
    seen = [k for r in rows for k in r if k in HEADLINE_NAMES or " linear " in f" {k} "]
    return list(dict.fromkeys(seen))


HEADLINE_NAMES = tuple(HEADLINES.values())
LOWER_IS_BETTER = ("pretrain loss",)


def best_values(rows: list[dict]) -> dict[str, float]:
    """Per metric column, the best value over the rows (lowest loss, highest accuracy)."""
    best = {}
    for col in metric_columns(rows):
        values = [r[col] for r in rows if isinstance(r.get(col), int | float)]
        if values:
            best[col] = min(values) if col in LOWER_IS_BETTER else max(values)
    return best


def sort_rows(rows: list[dict], by: str | None, ascending: bool = False) -> list[dict]:
    if by is None:
        return rows
    if rows and not any(by in r for r in rows):
        columns = sorted({k for r in rows for k in r})
        raise PipelineError(f"no column {by!r} to sort by; columns: {', '.join(columns)}")
    present = [r for r in rows if isinstance(r.get(by), int | float)]
    missing = [r for r in rows if not isinstance(r.get(by), int | float)]
    return sorted(present, key=lambda r: r[by], reverse=not ascending) + missing


def _cell(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "" if value is None else str(value)


def markdown_table(rows: list[dict], mark_best: bool = True) -> str:
    """A Markdown table of `rows` (union of their columns); the best value of each metric
    column in bold."""
    if not rows:
        return "(no experiments)"
    columns = list(dict.fromkeys(k for r in rows for k in r))
    best = best_values(rows) if mark_best else {}
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for r in rows:
        cells = []
        for c in columns:
            text = _cell(r.get(c))
            cells.append(f"**{text}**" if c in best and r.get(c) == best[c] else text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def csv_table(rows: list[dict]) -> str:
    """`rows` as CSV, the union of their columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()

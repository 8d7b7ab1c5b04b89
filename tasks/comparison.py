"""Configurations compared, and their differences told from the noise: each headline metric as
mean ± std over a configuration's pretraining replicas; against a baseline, the difference,
its 95% confidence interval over replicas, the p-value and whether the difference is larger
than the noise. With one replica on a side the noise is unmeasured, and the table says so."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np

from simclr.errors import PipelineError
from simclr.io import check_target, write_text
from simclr.significance import (
    ALPHA,
    CANNOT_TELL,
    false_discovery,
    paired_difference,
    verdict,
    welch_difference,
)
from tasks.experiments import UNKNOWN_REPLICA, Group, varying_params
from tasks.report_html import to_html

LOWER_IS_BETTER = ("pretrain.loss",)
# Metrics whose scale is set by params: compared only between configurations that agree on them
# (the NT-Xent loss grows with the batch (more negatives), falls with the temperature, and
# depends on the data).
SCALED_BY = {"pretrain.loss": ("pretrain.temperature", "pretrain.batch_size", "pretrain.dataset")}
NOT_COMPARABLE = "not comparable"


def incomparable(metric: str, groups: list[Group]) -> list[str]:
    """The params that set `metric`'s scale and differ between `groups` (none: comparable)."""
    varying = varying_params(groups)
    return [k for k in SCALED_BY.get(metric, ()) if k in varying]


def spread(values: dict[str, float]) -> tuple[float, float, int]:
    """Mean, sample std (0 for one value) and count of one metric's replica values."""
    v = list(values.values())
    return float(np.mean(v)), float(np.std(v, ddof=1)) if len(v) > 1 else 0.0, len(v)


def difference(base: dict[str, float], other: dict[str, float]) -> dict:
    """other - base of one metric, each side replica -> value: a paired t-test over the
    replicas when both have the same ones (same seeds, same label subsets), else Welch's
    t-test; with fewer than 2 replicas on a side, or a value that is not a number (a run that
    diverged writes NaN), the difference alone: its p would be NaN, which the q over the
    metrics cannot take."""
    diff = spread(other)[0] - spread(base)[0]
    if not all(math.isfinite(v) for v in [*base.values(), *other.values()]):
        return {
            "diff": diff,
            "ci": None,
            "p": None,
            "test": f"{CANNOT_TELL}: a value is NaN or inf",
        }
    known = UNKNOWN_REPLICA not in base and UNKNOWN_REPLICA not in other
    if not known or min(len(base), len(other)) < 2:
        n = min(len(base), len(other)) if known else 1
        return {"diff": diff, "ci": None, "p": None, "test": f"{CANNOT_TELL}: {n} replica"}
    if set(base) == set(other):
        ids = sorted(base)
        out = paired_difference([other[i] for i in ids], [base[i] for i in ids])
        return {**out, "test": f"paired t-test over {len(ids)} replicas (same seeds)"}
    out = welch_difference(list(other.values()), list(base.values()))
    return {**out, "test": f"Welch's t-test, {len(other)} vs {len(base)} replicas"}


def compare_groups(base: Group, other: Group) -> list[dict]:
    """One row per headline metric the two share, in the baseline's order: both sides' mean,
    std and replicas, the difference, its CI, p, the Benjamini-Hochberg q over the rows and
    the verdict."""
    rows = []
    for metric, base_values in base.values.items():
        if metric not in other.values:
            continue
        b, o = spread(base_values), spread(other.values[metric])
        differ = incomparable(metric, [base, other])
        d = difference(base_values, other.values[metric])
        if differ:  # neither tested nor counted in the q over the metrics
            d = {
                **d,
                "ci": None,
                "p": None,
                "test": f"{NOT_COMPARABLE}: {', '.join(differ)} differ",
            }
        ci = d["ci"] or [None, None]
        rows.append(
            {
                "metric": metric,
                "baseline mean": b[0],
                "baseline sd": b[1],
                "baseline n": b[2],
                "mean": o[0],
                "sd": o[1],
                "n": o[2],
                "diff": d["diff"],
                "ci low": ci[0],
                "ci high": ci[1],
                "p": d["p"],
                "test": d["test"],
            }
        )
    tested = [r for r in rows if r["p"] is not None]
    for r, q in zip(tested, false_discovery([r["p"] for r in tested]), strict=True):
        r["q"] = q
    for r in rows:
        r.setdefault("q", None)
        scaled = r["test"].startswith(NOT_COMPARABLE)
        r["beyond noise"] = NOT_COMPARABLE if scaled else verdict(r["p"], r["q"])
    return rows


def listing_rows(groups: list[Group]) -> list[dict]:
    """One row per configuration: its experiments, rev, replicas, the params that vary between
    configurations, and each metric's mean and std over its replicas."""
    varying = varying_params(groups)
    rows = []
    for g in groups:
        row = {"experiment": g.label, "rev": g.revs[0][:7], "replicas": " ".join(g.replicas)}
        row.update({k: g.params.get(k) for k in varying})
        for metric, values in g.values.items():
            mean, sd, _ = spread(values)
            row[metric], row[f"{metric} sd"] = mean, sd
        rows.append(row)
    return rows


def metric_columns(groups: list[Group]) -> list[str]:
    return list(dict.fromkeys(m for g in groups for m in g.values))


def sort_groups(groups: list[Group], by: str | None, ascending: bool = False) -> list[Group]:
    """Configurations by the mean of metric `by`, best (highest) first."""
    if by is None:
        return groups
    if groups and by not in metric_columns(groups):
        raise PipelineError(
            f"no column {by!r} to sort by; columns: {', '.join(metric_columns(groups))}"
        )
    present = [g for g in groups if by in g.values]
    missing = [g for g in groups if by not in g.values]
    present.sort(key=lambda g: spread(g.values[by])[0], reverse=not ascending)
    return present + missing


def _num(value, digits: int = 4) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return "" if value is None else str(value)


def _table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return "\n".join([*lines, *("| " + " | ".join(r) + " |" for r in rows)])


def listing_markdown(groups: list[Group]) -> str:
    """The configurations (experiments, rev, replicas, varying params), then one row per metric
    with each configuration's mean ± std over its replicas, the best of each row in bold."""
    if not groups:
        return "(no experiments)"
    varying = varying_params(groups)
    config = [
        [
            f"{i + 1}",
            g.label,
            g.revs[0][:7],
            str(len(g.replicas)),
            *(_num(g.params.get(k)) for k in varying),
        ]
        for i, g in enumerate(groups)
    ]
    lines = [_table(["#", "experiments", "rev", "replicas", *varying], config), ""]
    rows = []
    for metric in metric_columns(groups):
        stats = [spread(g.values[metric]) if metric in g.values else None for g in groups]
        means = [s[0] for s in stats if s is not None and np.isfinite(s[0])]
        differ = incomparable(metric, groups)
        best = None if differ or not means else (min if metric in LOWER_IS_BETTER else max)(means)
        if differ:
            metric = f"{metric} ({NOT_COMPARABLE}: {', '.join(differ)} differ)"
        cells = []
        for s in stats:
            text = "" if s is None else f"{s[0]:.4f} ± {s[1]:.4f}"
            cells.append(f"**{text}**" if s is not None and s[0] == best else text)
        rows.append([metric, *cells])
    lines.append(_table(["metric", *(f"#{i + 1}" for i in range(len(groups)))], rows))
    return "\n".join(lines)


def comparison_markdown(base: Group, other: Group, rows: list[dict]) -> str:
    """`other` against `base`: one row per metric; a plain sentence where the noise is not
    measured."""
    head = f"### {other.label} vs {base.label} (baseline)"
    n = min(len(base.replicas), len(other.replicas))
    if n < 2 or UNKNOWN_REPLICA in base.replicas + other.replicas:
        note = (
            f"Only {n} pretraining replica on a side: the pretraining's noise is not measured, "
            "so this table cannot tell which differences are real. Run replicas (params.yaml "
            "`replicas`, e.g. `-S 'replicas=[0,1,2]'`) to compare."
        )
    else:
        tested = [r for r in rows if r["p"] is not None]
        note = (
            f"diff = {other.label} − baseline; 95% CI and p over the replicas "
            f"({tested[0]['test'] if tested else ''}); q: Benjamini-Hochberg over these "
            f"{len(tested)} metrics; beyond noise: q < {ALPHA} (yes), or only p < {ALPHA}."
        )
        if n == 2:
            note += (
                " With 2 replicas on a side the test has 1 degree of freedom: wide intervals and "
                'little power, so a real difference can read "no"; run 3 or more.'
            )
    table = [
        [
            r["metric"],
            f"{r['baseline mean']:.4f} ± {r['baseline sd']:.4f} ({r['baseline n']})",
            f"{r['mean']:.4f} ± {r['sd']:.4f} ({r['n']})",
            f"{r['diff']:+.4f}",
            "" if r["ci low"] is None else f"[{r['ci low']:+.4f}, {r['ci high']:+.4f}]",
            _num(r["p"], 2),
            _num(r["q"], 2),
            r["beyond noise"],
        ]
        for r in rows
    ]
    head_row = ["metric", "baseline", "this", "diff", "95% CI", "p", "q", "beyond noise"]
    return "\n".join([head, "", note, "", _table(head_row, table)])


def csv_text(rows: list[dict]) -> str:
    """`rows` as CSV, the union of their columns."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(dict.fromkeys(k for r in rows for k in r)))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


OUTPUTS = (".md", ".html", ".csv")


def check_result_path(path: Path) -> Path:
    """`path` if a result can be written there (a known suffix, a file's place): checked before
    the work, so that a bad --output costs nothing."""
    if path.suffix not in OUTPUTS:
        raise PipelineError(
            f"--output {path}: no format for {path.suffix or 'no suffix'}; "
            f"use a file ending in {', '.join(OUTPUTS)}"
        )
    return check_target(path)


def write_result(path: Path, markdown: str, csv_rows: str, title: str) -> Path:
    """A result to `path`, by its suffix: the Markdown, a self-contained HTML page of it, or
    the CSV."""
    check_result_path(path)
    if path.suffix == ".html":
        return write_text(path, to_html(markdown, title))
    return write_text(path, markdown if path.suffix == ".md" else csv_rows)

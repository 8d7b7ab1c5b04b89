"""Did this run reproduce the committed results?
`python -m flows.reproduce [--against REV] [--output FILE.md|.html|.csv]`, after `dvc repro`.

Compares the workspace's headline metrics (reports/summary.json, every pretraining replica)
with those committed at REV (default HEAD), metric by metric, paired by replica (the same seeds):
identical (every replica's value equal: bitwise reproduced), within the noise (the difference's
95% confidence interval over the replicas, the noise band, holds 0), or moved beyond it
(Benjamini-Hochberg q < 0.05 over the metrics; "p < 0.05 only" where the raw p alone is). Exits
1 if any metric moved beyond the noise, 2 on an error (no committed results, other params).
"""

from __future__ import annotations

import sys
from pathlib import Path

from flows.cli import boundary
from flows.errors import ArgumentParser
from simclr.errors import PipelineError
from simclr.significance import ALPHA, CANNOT_TELL
from tasks.comparison import (
    check_result_path,
    compare_groups,
    csv_text,
    write_result,
)
from tasks.experiments import (
    PARAMS_FILE,
    Entry,
    entry_at,
    git,
    group_entries,
    params_from_yaml,
)

TITLE = "Reproduction check"


def this_run(repo: Path) -> Entry:
    """The workspace's params and headline metrics."""
    params = params_from_yaml((repo / PARAMS_FILE).read_text())
    return Entry("this run", "workspace", "workspace", params, {})


def committed_run(repo: Path, rev: str) -> Entry:
    resolved = git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").stdout.strip()
    entry = entry_at(repo, resolved, f"committed ({rev})") if resolved else None
    if entry is None:
        raise PipelineError(
            f"--against {rev}: no committed results there (reports/summary.json and params.yaml "
            "in Git); commit a run's results first"
        )
    return entry


def status(row: dict, base: dict[str, float], new: dict[str, float]) -> str:
    if base == new:
        return "identical"
    if row["p"] is None:  # one replica, or a value that is not a number
        return f"{CANNOT_TELL} ({row['test'].removeprefix(CANNOT_TELL + ': ')})"
    if row["q"] < ALPHA:
        return "moved beyond noise"
    return "p < 0.05 only" if row["p"] < ALPHA else "within noise"


def check(repo: Path, rev: str) -> tuple[list[dict], str]:
    """One row per headline metric, and the Markdown document."""
    committed, ours = committed_run(repo, rev), this_run(repo)
    changed = sorted(
        k for k in set(committed.params) | set(ours.params)
        if committed.params.get(k) != ours.params.get(k)
    )  # fmt: skip
    if changed:
        raise PipelineError(
            f"params.yaml differs from {rev}'s in {', '.join(changed[:10])}: this is another "
            "experiment, not a reproduction (python -m flows.compare compares experiments)"
        )
    base, new = group_entries([committed, ours], repo)[:2]
    if not new.values:
        raise PipelineError("reports/summary.json: missing; run dvc repro first")
    rows = []
    for r in compare_groups(base, new):
        half = None if r["ci low"] is None else (r["ci high"] - r["ci low"]) / 2
        b, n = base.values[r["metric"]], new.values[r["metric"]]
        rows.append({**r, "noise band": half, "status": status(r, b, n)})
    return rows, document(rows, rev, len(base.replicas))


def document(rows: list[dict], rev: str, replicas: int) -> str:
    counts = {
        s: sum(r["status"] == s for r in rows) for s in dict.fromkeys(r["status"] for r in rows)
    }
    lines = [
        f"# {TITLE}",
        "",
        f"This run against the results committed at `{rev}`, {replicas} pretraining replicas "
        "each, paired by replica: moved = this run − committed; noise band = the half-width of "
        "the 95% confidence interval of that difference over the replicas.",
        "",
        "- " + ", ".join(f"{n} {s}" for s, n in counts.items()),
        "",
        "| metric | committed | this run | moved | noise band (95%) | p | status |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        band = "" if r["noise band"] is None else f"± {r['noise band']:.4f}"
        p = "" if r["p"] is None else f"{r['p']:.2g}"
        lines.append(
            f"| {r['metric']} | {r['baseline mean']:.4f} ± {r['baseline sd']:.4f} | "
            f"{r['mean']:.4f} ± {r['sd']:.4f} | {r['diff']:+.4f} | {band} | {p} | {r['status']} |"
        )
    return "\n".join(lines) + "\n"


@boundary()
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m flows.reproduce", description=__doc__)
    parser.add_argument("--against", default="HEAD", help="the revision whose results to check")
    parser.add_argument("--repo", default=".", help="the repository (default: here)")
    parser.add_argument("--output", type=Path, help="write the table to this .md, .html or .csv")
    args = parser.parse_args(argv)
    if args.output is not None:
        check_result_path(args.output)  # before the work
    rows, markdown = check(Path(args.repo), args.against)
    if args.output is None:
        sys.stdout.write(markdown)
    else:
        write_result(args.output, markdown, csv_text(rows), TITLE)
        print(f"wrote {args.output}")
    return 1 if any(r["status"] == "moved beyond noise" for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

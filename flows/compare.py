"""Compare experiments in one command:
`python -m flows.compare [--baseline NAME] [--format md|csv] [--sort COL] [--output FILE]`.

Reads HEAD and every DVC experiment on it that has metrics (`dvc exp show --json`; with
--all-commits, every commit's) and groups them into configurations: experiments whose params
differ only in `replicas` are replicas of one configuration, pooled. Without --baseline it lists
the configurations (the params that differ between them) and each headline metric as mean ± std
over their pretraining replicas, the best in bold. With --baseline NAME (an experiment, a commit
or any revision Git resolves) it compares every other configuration with that one, metric by
metric: the difference, its 95% confidence interval over replicas, the p-value, the
Benjamini-Hochberg q over the metrics and whether the difference is beyond the noise; with one
replica on a side it says it cannot tell. With --output the result goes to that file instead,
as Markdown, a self-contained HTML page or CSV by its suffix (a file of yours, not a DVC
output: experiments are no stage's input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli import boundary
from flows.errors import ArgumentParser
from tasks.comparison import (
    check_result_path,
    compare_groups,
    comparison_markdown,
    csv_text,
    listing_markdown,
    listing_rows,
    sort_groups,
    write_result,
)
from tasks.experiments import Group, dvc_exp_show, entries, find_group, group_entries

TITLE = "DVC experiments"
ABOUT = (
    "HEAD and its DVC experiments (`python -m flows.compare`), grouped into configurations "
    "(experiments that differ only in `replicas` are pooled): the params that differ between "
    "them and each headline metric as mean ± std over the configuration's pretraining "
    "replicas, the best of each metric in bold."
)
ABOUT_BASELINE = (
    "Every configuration against the baseline `{name}` (`python -m flows.compare --baseline "
    "{name}`), metric by metric: the difference, its 95% confidence interval and p over the "
    "pretraining replicas, and whether it is beyond the noise."
)


def comparisons(groups: list[Group], baseline: Group) -> tuple[str, list[dict]]:
    """Markdown of every configuration against `baseline`, and the same as CSV rows."""
    sections, rows = [], []
    for g in groups:
        if g is baseline:
            continue
        found = compare_groups(baseline, g)
        sections.append(comparison_markdown(baseline, g, found))
        rows += [{"experiment": g.label, "baseline": baseline.label, **r} for r in found]
    return "\n\n".join(sections) or "(nothing to compare with the baseline)", rows


def build(args: argparse.Namespace) -> tuple[str, str]:
    """The Markdown document and the CSV text that the arguments ask for."""
    repo = Path(args.repo)
    groups = group_entries(entries(dvc_exp_show(repo, args.all_commits)), repo)
    if args.baseline is None:
        groups = sort_groups(groups, args.sort, args.ascending)
        body = listing_markdown(groups)
        return f"# {TITLE}\n\n{ABOUT}\n\n{body}\n", csv_text(listing_rows(groups))
    base = find_group(groups, args.baseline, repo)
    body, rows = comparisons(groups, base)
    about = ABOUT_BASELINE.format(name=args.baseline)
    return f"# {TITLE}\n\n{about}\n\n{body}\n", csv_text(rows)


def parse_args(argv: list[str] | None, prog: str = "python -m flows.compare") -> argparse.Namespace:
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--baseline", help="compare every configuration with this one")
    parser.add_argument("--format", choices=("md", "csv"), default="md", help="of the printout")
    parser.add_argument("--sort", help='a metric, e.g. "digits.linear.10%%" (listing only)')
    parser.add_argument("--ascending", action="store_true", help="smallest first")
    parser.add_argument("--all-commits", action="store_true", help="every commit, not HEAD's")
    parser.add_argument("--repo", default=".", help="the repository (default: here)")
    parser.add_argument("--output", type=Path, help="write the result to this .md, .html or .csv")
    return parser.parse_args(argv)


@boundary()
def main(argv: list[str] | None = None, prog: str = "python -m flows.compare") -> int:
    args = parse_args(argv, prog)
    if args.output is not None:
        check_result_path(args.output)  # before the work: dvc exp show takes seconds
    markdown, csv = build(args)
    if args.output is not None:
        write_result(args.output, markdown, csv, TITLE)
        print(f"wrote {args.output}")
        return 0
    sys.stdout.write(markdown if args.format == "md" else csv)
    return 0


if __name__ == "__main__":
    sys.exit(main())

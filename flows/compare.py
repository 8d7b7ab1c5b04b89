"""Compare experiments in one command: `python -m flows.compare [--format md|csv] [--sort COL]`.

Prints HEAD and every DVC experiment on it that has metrics (`dvc exp show --json`; with
--all-commits, every commit's): name, rev, the params that differ between them, and the
headline metrics (pretraining loss and kNN, the linear probe at each label fraction on every
dataset). In Markdown the best value of each metric column is bold.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

from simclr.errors import PipelineError
from tasks.experiments import dvc_exp_show, experiments_table, markdown_table, sort_rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.compare", description=__doc__)
    parser.add_argument("--format", choices=("md", "csv"), default="md")
    parser.add_argument("--sort", help='a column, e.g. "evaluate linear 100%%"')
    parser.add_argument("--ascending", action="store_true", help="smallest first")
    parser.add_argument("--all-commits", action="store_true", help="every commit, not HEAD's")
    parser.add_argument("--repo", default=".", help="the repository (default: here)")
    args = parser.parse_args(argv)
    try:
        rows = sort_rows(
            experiments_table(dvc_exp_show(Path(args.repo), args.all_commits)),
            args.sort,
            args.ascending,
        )
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.format == "md":
        print(markdown_table(rows))
    else:
        columns = list(dict.fromkeys(k for r in rows for k in r))
        writer = csv.DictWriter(sys.stdout, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())

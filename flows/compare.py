"""Compare experiments in one command:
`python -m flows.compare [--format md|csv] [--sort COL] [--output FILE.md|.html|.csv]`.

Prints HEAD and every DVC experiment on it that has metrics (`dvc exp show --json`; with
--all-commits, every commit's): name, rev, the params that differ between them, and the
headline metrics (pretraining loss and kNN, the linear probe at each label fraction on every
dataset). In Markdown the best value of each metric column is bold. With --output, the table
goes to that file instead, as Markdown, a self-contained HTML page or CSV by its suffix (a file
of yours, not a DVC output: experiments are no stage's input).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from flows.cli import boundary
from simclr.errors import PipelineError
from simclr.io import write_text
from tasks.experiments import (
    csv_table,
    dvc_exp_show,
    experiments_table,
    markdown_table,
    sort_rows,
)
from tasks.report_html import to_html

TITLE = "DVC experiments"
ABOUT = (
    "HEAD and its DVC experiments (`python -m flows.compare`): the params that differ between "
    "them and the headline metrics, the best of each metric column in bold."
)


def markdown_document(rows: list[dict]) -> str:
    return f"# {TITLE}\n\n{ABOUT}\n\n{markdown_table(rows)}\n"


# Output file suffix -> the file's text.
OUTPUTS = {
    ".md": markdown_document,
    ".html": lambda rows: to_html(markdown_document(rows), TITLE),
    ".csv": csv_table,
}


def write_output(rows: list[dict], path: Path) -> Path:
    if path.suffix not in OUTPUTS:
        raise PipelineError(
            f"--output {path}: no format for {path.suffix or 'no suffix'}; "
            f"use a file ending in {', '.join(OUTPUTS)}"
        )
    return write_text(path, OUTPUTS[path.suffix](rows))


def parse_args(argv: list[str] | None, prog: str = "python -m flows.compare") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--format", choices=("md", "csv"), default="md", help="of the printout")
    parser.add_argument("--sort", help='a column, e.g. "evaluate linear 100%%"')
    parser.add_argument("--ascending", action="store_true", help="smallest first")
    parser.add_argument("--all-commits", action="store_true", help="every commit, not HEAD's")
    parser.add_argument("--repo", default=".", help="the repository (default: here)")
    parser.add_argument("--output", type=Path, help="write the table to this .md, .html or .csv")
    return parser.parse_args(argv)


@boundary()
def main(argv: list[str] | None = None, prog: str = "python -m flows.compare") -> int:
    args = parse_args(argv, prog)
    rows = sort_rows(
        experiments_table(dvc_exp_show(Path(args.repo), args.all_commits)),
        args.sort,
        args.ascending,
    )
    if args.output is not None:
        write_output(rows, args.output)
        print(f"wrote {args.output}: {len(rows)} rows")
        return 0
    if args.format == "md":
        print(markdown_table(rows))
    else:
        sys.stdout.write(csv_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

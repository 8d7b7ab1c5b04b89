"""Serve the pipeline on a schedule without a work pool: `python -m flows.serve`.

The process registers a deployment on the Prefect server (PREFECT_API_URL) and runs its
scheduled and manually triggered runs itself, one at a time, until stopped (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json

from flows.cli import PARAMS, boundary, prefect_api
from flows.errors import ArgumentParser
from flows.pipeline import pipeline_flow
from simclr.config import load_params
from simclr.errors import PipelineError

DEFAULT_CRON = "0 3 * * *"  # every night at 03:00, server time zone UTC


def _overrides(text: str) -> dict:
    """--overrides: a JSON object (argparse turns a refusal into its one-line usage error)."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not JSON ({e})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(
            f'{text!r}: a JSON object of params, e.g. {{"pretrain.epochs": 100}}'
        )
    return value


def _cron(text: str) -> str:
    """--cron: checked as the deployment's schedule will be (Prefect's CronSchedule), so that
    a bad expression is argparse's one-line usage error before any server is started."""
    from prefect.client.schemas.schedules import CronSchedule
    from pydantic import ValidationError

    try:
        CronSchedule(cron=text)
    except ValidationError as e:
        reason = e.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise argparse.ArgumentTypeError(
            f"{reason}; write five fields: minute hour day month weekday, e.g. '0 3 * * *'"
        ) from None
    return text


def _name(text: str) -> str:
    """--name: a deployment name Prefect accepts (it refuses these characters, later, in a
    traceback)."""
    from prefect.types import BANNED_CHARACTERS

    banned = [c for c in BANNED_CHARACTERS if c in text]
    if not text.strip() or banned:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a deployment name, without {' '.join(BANNED_CHARACTERS)}"
        )
    return text


@boundary()
def main(argv: list[str] | None = None, prog: str = "python -m flows.serve") -> None:
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--name", default="simclr-serve", type=_name, help="deployment name")
    parser.add_argument("--cron", default=DEFAULT_CRON, type=_cron, help="schedule (cron, UTC)")
    parser.add_argument(
        "--overrides",
        default={},
        type=_overrides,
        help="params for every run, JSON: '{\"pretrain.epochs\": 100}'",
    )
    args = parser.parse_args(argv)
    try:  # every run would apply them to params.yaml: refused now, not at 3 a.m.
        load_params(PARAMS, args.overrides)
    except PipelineError as e:
        raise PipelineError(f"--overrides: {e}") from None
    with prefect_api():  # PREFECT_API_URL's server, else one of its own until stopped
        pipeline_flow.serve(
            name=args.name,
            cron=args.cron,
            parameters={"overrides": args.overrides},
            tags=["simclr"],
            limit=1,  # one run at a time: a second scheduled run waits for the first
        )


if __name__ == "__main__":
    main()

"""Entry point shared by the stage flows: validate params first, run the flow, and turn a
PipelineError into one line on stderr and a non-zero exit."""

from __future__ import annotations

import sys
from collections.abc import Callable

from simclr.config import load_params
from simclr.errors import PipelineError

PARAMS = "params.yaml"


def run_stage(flow: Callable[..., object], *args: str) -> None:
    try:
        params = load_params(PARAMS)
        flow(*args, params=params)
    except PipelineError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)


def stage_arg(usage: str) -> str:
    """The single positional argument of a per-dataset stage."""
    if len(sys.argv) != 2:
        print(f"usage: {usage}", file=sys.stderr)
        sys.exit(2)
    return sys.argv[1]

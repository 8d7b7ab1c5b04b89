"""The entry point every pretraining process runs under torchrun (`python -m flows.launch`;
tasks/launch.py builds the command, launches it and holds what each process does)."""

from __future__ import annotations

import argparse
import sys

import torch

from flows.errors import user_errors
from tasks.launch import run_worker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one pretraining process under torchrun")
    parser.add_argument("--params", required=True, help="params.yaml (or its JSON)")
    parser.add_argument("--data", required=True, help="the prepared pretraining set's folder")
    parser.add_argument("--resume", help="resumable state (read and written by rank 0)")
    parser.add_argument("--result", help="where rank 0 writes the trained weights")
    args = parser.parse_args(argv)
    try:
        with user_errors():  # one line for an error the user can fix, exit status 2
            run_worker(args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

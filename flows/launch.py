"""The entry point every pretraining process runs under torchrun (`python -m flows.launch`;
tasks/launch.py builds the command and launches it): params as rank 0 read them, pretraining
on this process's share, and rank 0's result written for the stage."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from dataclasses import fields
from pathlib import Path

import torch

from flows.errors import user_errors
from simclr.checkpoint import save_state
from simclr.config import Params, from_dict, load_params, to_dict
from simclr.errors import PipelineError
from simclr.processes import EXEC_PID, die_with_parent
from simclr.train import Labelled, Pretrained, Recipe, pretrain
from tasks.arguments import model_kwargs, recipe_kwargs


def _save_result(result: Pretrained, path: str | Path) -> None:
    """Rank 0's result for tasks.launch.pretrain_distributed: each field of `result` in plain
    data (RESULT_KEYS)."""
    state = {f.name: getattr(result, f.name) for f in fields(Pretrained)}
    state["encoder"], state["head"] = result.encoder.state_dict(), result.head.state_dict()
    state["device"] = str(result.device)
    save_state(state, path)


def _worker(args: argparse.Namespace) -> None:
    from simclr.data.prepared import load_prepared
    from simclr.device import select_device
    from simclr.distributed import init_from_env, world

    parent = int(os.environ.get(EXEC_PID, os.getppid()))
    die_with_parent()  # torchrun killed: stop at once, leave the resumable state alone
    if os.getppid() != parent:  # it died before the line above
        raise PipelineError("torchrun exited before this process started")
    params = load_params(args.params)
    init_from_env(select_device(params.pretrain.device))
    rank, _ = world()
    # Every process trains with rank 0's params: another machine's params.yaml may lack the
    # overrides of `dvc exp run -S` or hold local edits.
    box = [to_dict(params)]
    torch.distributed.broadcast_object_list(box, src=0)
    params = from_dict(Params, box[0], "")
    logging.basicConfig(level=logging.INFO if rank == 0 else logging.WARNING, format="%(message)s")
    data = load_prepared(Path(args.data))
    monitor = None
    if rank == 0:  # the kNN monitor runs on rank 0 alone, between epochs
        monitor = Labelled(data.train.images, data.train.labels, data.test.images, data.test.labels)
    result = pretrain(
        data.pretraining.images,
        model_kwargs(params.model),
        Recipe(**recipe_kwargs(params.pretrain)),
        params.seed,
        monitor=monitor,
        resume_path=args.resume,
    )
    if rank == 0 and args.result:
        _save_result(result, args.result)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one pretraining process under torchrun")
    parser.add_argument("--params", required=True, help="params.yaml (or its JSON)")
    parser.add_argument("--data", required=True, help="the prepared pretraining set's folder")
    parser.add_argument("--resume", help="resumable state (read and written by rank 0)")
    parser.add_argument("--result", help="where rank 0 writes the trained weights")
    args = parser.parse_args(argv)
    try:
        with user_errors():  # one line for an error the user can fix, exit status 2
            _worker(args)
    finally:
        if torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())

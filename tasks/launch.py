"""Pretraining in several processes with torchrun: the command for each machine, the launcher
the pretrain stage calls, and what each process does (`run_worker`; its entry point is
flows/launch.py, `python -m flows.launch`).

Node 0 is the machine the stage runs on; it holds global rank 0, which reads and writes the
resumable state and writes the result the stage turns into the checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import sys
import tempfile
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import torch

from simclr.checkpoint import load_state, save_state, unseal
from simclr.config import DistributedConfig, Params, from_dict, load_params, to_dict
from simclr.errors import PipelineError
from simclr.models import build_model
from simclr.processes import EXEC_PID, die_with_parent, run_streaming, with_parent_death
from simclr.train import EpochCallback, Labelled, Pretrained, Recipe, pretrain
from tasks.arguments import model_kwargs, recipe_kwargs

log = logging.getLogger("tasks.launch")
# A worker's one-line PipelineError, or the last line of an uncaught exception's traceback
_ERROR = re.compile(r"^(?:\[rank\d+\]: )?(?:error: (.+)|([\w.]*(?:Error|Exception): .+))$")


def torchrun_command(
    cfg: DistributedConfig,
    node_rank: int,
    params: str | Path,
    data: str | Path,
    resume: str | Path | None = None,
    result: str | Path | None = None,
) -> list[str]:
    """The torchrun command line for machine `node_rank` (0 = where the stage runs)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(cfg.nnodes)]
    cmd += ["--nproc-per-node", str(cfg.nproc_per_node)]
    if cfg.nnodes == 1:
        cmd += ["--standalone"]  # a free local port, no rendezvous host to configure
    else:  # static rendezvous: node 0 holds global rank 0, the one that writes
        cmd += ["--node-rank", str(node_rank), "--master-addr", cfg.master_addr]
        cmd += ["--master-port", str(cfg.master_port)]
    cmd += ["-m", "flows.launch", "--params", str(params), "--data", str(data)]
    if resume is not None:
        cmd += ["--resume", str(resume)]
    if result is not None:
        cmd += ["--result", str(result)]
    return cmd


def pretrain_distributed(
    params: Params,
    data: str | Path,
    image_shape: tuple[int, ...],
    resume_path: str | Path,
    on_line: Callable[[str], None],
    on_epoch: EpochCallback | None = None,
) -> Pretrained:
    """Run `pretrain` under torchrun on this machine (node 0) and return its result, as
    `pretrain` would in-process. Every output line of the processes goes to `on_line`; the epochs
    are replayed through `on_epoch` once they are done."""
    cfg = params.pretrain.distributed
    with tempfile.TemporaryDirectory(prefix="simclr-launch-") as tmp:
        params_file, result = Path(tmp) / "params.json", Path(tmp) / "result.pt"
        params_file.write_text(json.dumps(to_dict(params)))
        cmd = torchrun_command(cfg, 0, params_file, data, resume_path, result)
        on_line(f"launching {cfg.world_size} processes: {shlex.join(cmd)}")
        for node in range(1, cfg.nnodes):
            other = ["python", *torchrun_command(cfg, node, "params.yaml", data)[1:]]
            on_line(f"on node {node}, from the repository root, run: {shlex.join(other)}")
        _run(cmd, on_line)
        pretrained = _read_result(result, params, image_shape)
    if on_epoch is not None:
        for epoch, metrics in enumerate(pretrained.history):
            on_epoch(epoch, metrics)
    return pretrained


# The result rank 0 hands to the stage: a Pretrained, each field under its name, in plain data.
RESULT_KEYS = frozenset(f.name for f in fields(Pretrained))


def _read_result(path: Path, params: Params, image_shape: tuple[int, ...]) -> Pretrained:
    state = unseal(load_state(path), path, RESULT_KEYS)
    encoder, head = build_model(image_shape[-1], image_shape[1], **model_kwargs(params.model))
    encoder.load_state_dict(state["encoder"])
    head.load_state_dict(state["head"])
    state.update(encoder=encoder, head=head, device=torch.device(state["device"]))
    return Pretrained(**state)


def _run(cmd: list[str], on_line: Callable[[str], None]) -> None:
    # If the stage dies, torchrun gets SIGTERM and stops its workers.
    wrapped = with_parent_death(cmd, signal.SIGTERM)
    rc, tail = run_streaming(wrapped, on_line, keep=200)  # torchrun passes SIGTERM on
    if rc != 0:  # our one-line error, else the first process's exception, else the tail
        found = [m.groups() for ln in tail if (m := _ERROR.match(ln))]
        ours = [a for a, _ in found if a] + [b for _, b in found if b]
        reason = ours[0] if ours else " | ".join(tail[-3:])
        raise PipelineError(f"distributed pretraining failed (exit {rc}): {reason}")


def _save_result(result: Pretrained, path: str | Path) -> None:
    """Rank 0's result for tasks.launch.pretrain_distributed: each field of `result` in plain
    data (RESULT_KEYS)."""
    state = {f.name: getattr(result, f.name) for f in fields(Pretrained)}
    state["encoder"], state["head"] = result.encoder.state_dict(), result.head.state_dict()
    state["device"] = str(result.device)
    save_state(state, path)


def run_worker(args: argparse.Namespace) -> None:
    """One pretraining process under torchrun, as flows/launch.py's arguments say."""
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

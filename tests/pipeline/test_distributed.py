"""Data-parallel pretraining with torch.distributed (gloo, CPU): two processes on one global
batch compute the single-process loss and gradients, with synchronised BN; the pipeline's
pretrain stage runs under torchrun, takes its processes with it when killed, and resumes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import (
    MODEL,
    RESUME_PARAMS,
    ROOT,
    checkpoint_weights,
    pretrain_run,
    pretrain_stage,
    pythonpath,
    saved_epochs,
)
from torch import nn

from simclr.config import DistributedConfig, load_params
from simclr.distributed import GlooSyncBatchNorm, data_parallel, gloo_sync_batchnorm
from simclr.errors import PipelineError
from simclr.features import for_inference
from simclr.loss import nt_xent
from simclr.models import build_model
from tasks.launch import pretrain_distributed, torchrun_command

N, TEMPERATURE = 12, 0.5  # global batch: 12 images, 24 views


def _model_and_views():
    """The same float64 network and the same global batch of views in every process."""
    torch.manual_seed(0)
    encoder, head = build_model(3, 8, **MODEL)
    gen = torch.Generator().manual_seed(1)
    v1, v2 = torch.rand(2, N, 3, 8, 8, generator=gen, dtype=torch.float64)
    return encoder.double(), head.double(), v1, v2


def _step(net: nn.Module, v1: torch.Tensor, v2: torch.Tensor) -> torch.Tensor:
    """One training step's loss, as simclr.train computes it: both views through the network
    together, so BN statistics cover all of them."""
    n = len(v1)
    z = net(torch.cat([v1, v2]))
    return nt_xent(z[:n], z[n:], TEMPERATURE)


def _state(net: nn.Module, loss: torch.Tensor) -> dict:
    return {
        "loss": loss.detach().clone(),
        "grads": {k: p.grad.clone() for k, p in net.named_parameters()},
        "buffers": {k: b.clone() for k, b in net.named_buffers()},
    }


def _rank(rank: int, world: int, init_file: str, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        encoder, head, v1, v2 = _model_and_views()
        ddp = data_parallel(nn.Sequential(encoder, head), torch.device("cpu"))
        local = slice(rank * N // world, (rank + 1) * N // world)  # this process's images
        loss = _step(ddp, v1[local], v2[local])
        loss.backward()  # DDP averages the gradients over processes
        global_loss = loss.detach().clone()
        dist.all_reduce(global_loss)
        torch.save(_state(ddp.module, global_loss / world), f"{out}/rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_two_processes_match_one_process_on_the_global_batch(tmp_path):
    mp.spawn(_rank, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    encoder, head, v1, v2 = _model_and_views()
    net = nn.Sequential(encoder, head)
    loss = _step(net, v1, v2)
    loss.backward()
    ref = _state(net, loss)
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt", weights_only=True)
        assert abs(float(got["loss"]) - float(ref["loss"])) < 1e-6
        assert got["grads"].keys() == ref["grads"].keys()
        for k, g in ref["grads"].items():
            assert (got["grads"][k] - g).abs().max() < 1e-5, k
        # BN statistics came from all 24 views, not this process's 12
        assert got["buffers"].keys() == ref["buffers"].keys()
        for k, b in ref["buffers"].items():
            assert torch.allclose(got["buffers"][k].to(b.dtype), b, atol=1e-9), k
    # The check has teeth: each process alone (its own negatives, its own BN) differs.
    alone_net = nn.Sequential(*_model_and_views()[:2])
    alone = _step(alone_net, v1[: N // 2], v2[: N // 2])
    assert abs(alone.item() - ref["loss"].item()) > 1e-3


def test_a_synchronised_encoder_folds_for_inference_like_a_plain_one():
    # What the kNN monitor gets in a data-parallel run: the encoder whose BN gloo synchronises.
    encoder = _model_and_views()[0]
    with torch.no_grad():  # running statistics away from (0, 1), so that folding them matters
        for bn in (m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
    gloo_sync_batchnorm(encoder)
    bns = [m for m in encoder.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(isinstance(m, GlooSyncBatchNorm) for m in bns)  # BN2d, and synchronised
    folded = for_inference(encoder)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in folded.modules())
    assert all(isinstance(m, GlooSyncBatchNorm) for m in bns)  # the original left synchronised
    x = torch.rand(4, 3, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), encoder(x), rtol=1e-9, atol=1e-9)


def test_torchrun_command_places_rank_0_on_the_stage_machine():
    one = torchrun_command(DistributedConfig(nproc_per_node=4), 0, "p.json", "data/x", "r.pt")
    assert "--standalone" in one and one[one.index("--nproc-per-node") + 1] == "4"
    cfg = DistributedConfig(nnodes=2, nproc_per_node=8, master_addr="10.0.0.5", master_port=29511)
    other = torchrun_command(cfg, 1, "params.yaml", "data/x")
    assert other[other.index("--node-rank") + 1] == "1"
    assert other[other.index("--master-addr") + 1] == "10.0.0.5"
    assert other[other.index("--master-port") + 1] == "29511"
    assert "--result" not in other and "--resume" not in other  # only node 0 writes


def test_a_failing_process_is_reported_in_one_line(tmp_path):
    (tmp_path / "params.yaml").write_text(PARAMS)
    params = load_params(tmp_path / "params.yaml")
    lines: list[str] = []
    with pytest.raises(PipelineError, match=r"^distributed pretraining failed \(exit 1\): .*nope"):
        pretrain_distributed(params, tmp_path / "nope", (4, 8, 8, 1), tmp_path / "r", lines.append)
    assert lines and lines[0].startswith("launching 2 processes")


# The one-process kill test's tiny run, in two processes of one thread each
PARAMS = RESUME_PARAMS.replace("epochs: 12", "epochs: 8").replace(
    "threads: 2", "threads: 1\n  distributed: {nproc_per_node: 2}"
)


def _processes_in(cwd: Path) -> list[str]:
    """Command lines of the processes working in `cwd` (the stage, torchrun, its workers)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and Path(os.readlink(proc / "cwd")) == cwd:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return found


def test_distributed_pretrain_stage_resumes_after_sigkill_like_an_uninterrupted_run(
    tmp_path, prefect_api
):
    (tmp_path / "params.yaml").write_text(PARAMS)
    env = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "PREFECT_API_URL": prefect_api}
    prepare = [sys.executable, "-m", "flows.prepare", "digits"]
    subprocess.run(prepare, cwd=tmp_path, env=env, check=True, capture_output=True)

    proc = pretrain_stage(tmp_path, env, new_session=True)
    deadline = time.monotonic() + 180
    while saved_epochs(tmp_path / ".resume") < 2:
        assert proc.poll() is None, "finished before it could be killed:\n" + proc.stdout.read()
        assert time.monotonic() < deadline, "no resumable state after 180 s"
        time.sleep(0.02)
    proc.kill()  # SIGKILL to the stage alone: torchrun and both workers must follow it
    proc.wait()
    deadline = time.monotonic() + 30
    while left := _processes_in(tmp_path):
        assert time.monotonic() < deadline, f"still running after the stage was killed: {left}"
        time.sleep(0.1)
    killed_at = saved_epochs(tmp_path / ".resume")
    assert 2 <= killed_at < 8 and not (tmp_path / "models/simclr-0.pt").exists()

    rerun = pretrain_stage(tmp_path, env, new_session=True)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    assert "launching 2 processes" in out, out[-3000:]
    assert "resuming from" in out, out[-3000:]
    assert pretrain_run(tmp_path)["resumed_from_epoch"] == killed_at
    assert len(torch.load(tmp_path / "models/simclr-0.pt", weights_only=True)["history"]) == 8
    loss_rows = (tmp_path / "reports/pretrain/0/plots/metrics/loss.tsv").read_text().splitlines()
    assert len(loss_rows) == 1 + 8  # every epoch once, restored ones replayed
    assert not list((tmp_path / ".resume").glob("*.pt"))

    (tmp_path / "models/simclr-0.pt").rename(tmp_path / "resumed.pt")
    fresh = pretrain_stage(tmp_path, env, new_session=True)
    out, _ = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, out
    weights = checkpoint_weights(tmp_path / "models/simclr-0.pt")
    resumed_weights = checkpoint_weights(tmp_path / "resumed.pt")
    assert resumed_weights.keys() == weights.keys()
    for k, w in weights.items():  # gloo on CPU: the same numbers, killed or not
        assert torch.equal(resumed_weights[k], w), k
    # and the same checkpoint file, history and all
    assert (tmp_path / "resumed.pt").read_bytes() == (tmp_path / "models/simclr-0.pt").read_bytes()

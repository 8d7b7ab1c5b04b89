"""A pretraining killed with SIGKILL resumes from its last epoch and, on CPU, ends bitwise
identical to an uninterrupted run, checkpoint file and all: the real stage command of one
pretraining-seed replica (replica 1, its own seed and resumable state), in a subprocess,
killed for real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from helpers import (
    RESUME_PARAMS,
    ROOT,
    checkpoint_weights,
    pretrain_run,
    pretrain_stage,
    pythonpath,
    saved_epochs,
)


@pytest.fixture
def workdir(tmp_path, prefect_api):
    (tmp_path / "params.yaml").write_text(RESUME_PARAMS)
    env = {**os.environ, "PYTHONPATH": pythonpath(ROOT), "PREFECT_API_URL": prefect_api}
    subprocess.run(
        [sys.executable, "-m", "flows.prepare", "digits"], cwd=tmp_path, env=env, check=True
    )
    return tmp_path, env


REPLICA = 1
CHECKPOINT = f"models/simclr-{REPLICA}.pt"


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(workdir):
    cwd, env = workdir
    proc = pretrain_stage(cwd, env, replica=REPLICA)
    deadline = time.monotonic() + 120
    while saved_epochs(cwd / ".resume") < 2:
        assert proc.poll() is None, "finished before it could be killed:\n" + proc.stdout.read()
        assert time.monotonic() < deadline, "no resumable state after 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = saved_epochs(cwd / ".resume")
    assert 2 <= killed_at < 12 and not (cwd / CHECKPOINT).exists()

    rerun = pretrain_stage(cwd, env, replica=REPLICA)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    resumed_run = pretrain_run(cwd, REPLICA)
    assert resumed_run["resumed_from_epoch"] == killed_at
    assert len(resumed_run["epochs"]) == 12 and resumed_run["provenance"]["device"] == "cpu"
    assert not list((cwd / ".resume").glob("*.pt"))  # cleaned up once the checkpoint is out
    loss_rows = (cwd / f"reports/pretrain/{REPLICA}/plots/metrics/loss.tsv").read_text()
    assert len(loss_rows.splitlines()) == 1 + 12  # header + every epoch once, restored replayed

    shutil.move(cwd / CHECKPOINT, cwd / "resumed.pt")
    fresh = pretrain_stage(cwd, env, replica=REPLICA)
    out, _ = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, out
    assert pretrain_run(cwd, REPLICA)["resumed_from_epoch"] == 0

    resumed = torch.load(cwd / "resumed.pt", weights_only=True)
    reference = torch.load(cwd / CHECKPOINT, weights_only=True)
    assert reference["seed"] == REPLICA  # replica r pretrains with seed + r (seed 0 here)
    assert {k for h in reference["history"] for k in h} == {"loss", "lr", "knn_accuracy"}
    assert resumed["history"] == reference["history"]
    mine, ref = checkpoint_weights(cwd / "resumed.pt"), checkpoint_weights(cwd / CHECKPOINT)
    assert mine.keys() == ref.keys()
    for k in ref:
        assert torch.equal(mine[k], ref[k]), k
    # The checkpoint holds only what training computed, so a killed and resumed run writes the
    # very file an uninterrupted one writes: DVC sees the same checkpoint.
    assert (cwd / "resumed.pt").read_bytes() == (cwd / CHECKPOINT).read_bytes()

"""A pretraining killed with SIGKILL resumes from its last epoch and, on CPU, ends bitwise
identical to an uninterrupted run: the real stage command, in a subprocess, killed for real."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import ROOT, pretrain_stage, saved_epochs

PARAMS = """\
seed: 0
data: {image_size: 8, test_fraction: 0.2, max_per_class: 60}
datasets: {digits: {source: digits}}
model: {widths: [16, 32], blocks: [1, 1], proj_hidden_dim: 32, proj_dim: 16}
pretrain:
  dataset: digits
  epochs: 12
  batch_size: 96
  warmup_epochs: 1
  device: cpu
  threads: 2
  knn_every: 4
  augment: {crop_scale: [0.3, 1.0], flip_p: 0.0}
transfer: {datasets: []}
"""


@pytest.fixture
def workdir(tmp_path, prefect_api):
    (tmp_path / "params.yaml").write_text(PARAMS)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_api}
    subprocess.run(
        [sys.executable, "-m", "flows.prepare", "digits"], cwd=tmp_path, env=env, check=True
    )
    return tmp_path, env


def _weights(path: Path) -> dict:
    state = torch.load(path, weights_only=True)
    return {
        **{f"encoder.{k}": v for k, v in state["encoder"].items()},
        **{f"head.{k}": v for k, v in state["head"].items()},
    }


def test_sigkill_then_rerun_resumes_and_matches_an_uninterrupted_run(workdir):
    cwd, env = workdir
    proc = pretrain_stage(cwd, env)
    deadline = time.monotonic() + 120
    while saved_epochs(cwd / ".resume") < 2:
        assert proc.poll() is None, "finished before it could be killed:\n" + proc.stdout.read()
        assert time.monotonic() < deadline, "no resumable state after 120 s"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = saved_epochs(cwd / ".resume")
    assert 2 <= killed_at < 12 and not (cwd / "models/simclr.pt").exists()

    rerun = pretrain_stage(cwd, env)
    out, _ = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, out
    resumed = torch.load(cwd / "models/simclr.pt", weights_only=True)
    assert resumed["resumed_from_epoch"] == killed_at
    assert not list((cwd / ".resume").glob("*.pt"))  # cleaned up once the checkpoint is out
    loss_rows = (cwd / "reports/pretrain/plots/metrics/loss.tsv").read_text().splitlines()
    assert len(loss_rows) == 1 + 12  # header + every epoch once, restored ones replayed

    shutil.move(cwd / "models/simclr.pt", cwd / "resumed.pt")
    fresh = pretrain_stage(cwd, env)
    out, _ = fresh.communicate(timeout=300)
    assert fresh.returncode == 0, out
    reference = torch.load(cwd / "models/simclr.pt", weights_only=True)
    assert reference["resumed_from_epoch"] == 0

    def learning(history):  # what training computed; timings differ between runs
        return [
            {k: v for k, v in h.items() if k in ("loss", "lr", "knn_accuracy")} for h in history
        ]

    assert learning(reference["history"]) == learning(resumed["history"])
    mine, ref = _weights(cwd / "resumed.pt"), _weights(cwd / "models/simclr.pt")
    assert mine.keys() == ref.keys()
    for k in ref:
        assert torch.equal(mine[k], ref[k]), k

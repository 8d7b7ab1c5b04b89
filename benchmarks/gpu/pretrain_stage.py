"""The pretrain stage itself on CUDA GPUs: one process, then two under torchrun (DDP, NCCL,
SyncBatchNorm) where the machine has two GPUs. Reports epoch time and images/s.

Run from the repository root on a machine with a CUDA GPU:

    python -m benchmarks.gpu.pretrain_stage [--images 16384] [--epochs 3]
        [--batch 512] [--encoder resnet18] [--out benchmarks/results/gpu_pretrain_stage.jsonl]

It makes a temporary project directory with synthetic 32 px RGB images (an npz source, so no
download), runs the real stage commands `python -m flows.prepare synthetic` and
`python -m flows.pretrain` there (one local Prefect server for all of them), and reads the
per-epoch timings the stage wrote (reports/pretrain/0/run.json). The first epoch (cuDNN autotuning,
NCCL setup) is left out of the medians. `--device cpu --images 512 --batch 64 --encoder small`
is a smoke test of the script, not a figure.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks.common import ROOT, results_file, save

PARAMS = """\
seed: 0
replicas: [0]
data: {{image_size: 32, test_fraction: 0.1}}
datasets: {{synthetic: {{source: npz, path: synthetic.npz}}}}
validate: {{min_pixel_std: 0.0}}
model: {{encoder: {encoder}, head: v1, proj_hidden_dim: 512, proj_dim: 128}}
pretrain:
  dataset: synthetic
  epochs: {epochs}
  batch_size: {batch}
  optimizer: lars
  lr: 0.3
  warmup_epochs: 0
  device: {device}
  precision: {precision}
  knn_every: 0
  augment: {{crop_scale: [0.08, 1.0], flip_p: 0.5}}
  distributed: {{nproc_per_node: {nproc}}}
transfer: {{datasets: []}}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=16384, help="synthetic training images")
    p.add_argument("--epochs", type=int, default=3, help="epochs per run (the first untimed)")
    p.add_argument("--batch", type=int, default=512, help="global batch")
    p.add_argument("--encoder", default="resnet18")
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--precision", default="auto")
    p.add_argument("--nproc", default="1,2", help="process counts to run, comma-separated")
    p.add_argument("--out", type=Path, default=results_file("gpu_pretrain_stage"))
    return p.parse_args(argv)


def write_images(work: Path, n: int) -> None:
    """`n` random 32 px RGB training images and a tenth as many test images (at least 20),
    ten classes, as the npz source of PARAMS."""
    import numpy as np

    rng = np.random.default_rng(0)
    n_test = max(n // 10, 20)
    np.savez(
        work / "synthetic.npz",
        x_train=rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8),
        y_train=np.arange(n) % 10,
        x_test=rng.integers(0, 256, (n_test, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(n_test) % 10,
    )


def run_stage(work: Path, args: argparse.Namespace, nproc: int) -> dict | None:
    """Prepare and pretrain in `work` with `nproc` processes: the medians over the timed epochs
    from the checkpoint's history, or None (the output printed) when a command failed."""
    import torch

    (work / "params.yaml").write_text(
        PARAMS.format(
            encoder=args.encoder,
            epochs=args.epochs,
            batch=args.batch,
            device=args.device,
            precision=args.precision,
            nproc=nproc,
        )
    )
    (work / "models/simclr-0.pt").unlink(missing_ok=True)
    py = sys.executable
    script = f"{py} -m flows.prepare synthetic && {py} -m flows.pretrain"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
    }
    cmd = [py, "-m", "flows.with_server", "sh", "-c", script]
    done = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        print(done.stdout[-4000:], done.stderr[-4000:], sep="\n", file=sys.stderr)
        return None
    state = torch.load(work / "models/simclr-0.pt", weights_only=True)
    run = json.loads((work / "reports/pretrain/0/run.json").read_text())  # timings, device
    timed = run["epochs"][1:] or run["epochs"]
    return {
        "nproc": nproc,
        "epoch_seconds": statistics.median(h["epoch_seconds"] for h in timed),
        "images_per_s": statistics.median(h["images_per_s"] for h in timed),
        "final_loss": state["history"][-1]["loss"],
        "precision": state["precision"],
        "device": run["provenance"].get("device"),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    gpus = torch.cuda.device_count()
    if args.device == "cuda" and gpus == 0:
        print("no CUDA GPU on this machine; nothing measured", file=sys.stderr)
        return 2
    runs = []
    with tempfile.TemporaryDirectory(prefix="gpu-stage-") as tmp:
        work = Path(tmp)
        write_images(work, args.images)
        for nproc in [int(k) for k in args.nproc.split(",")]:
            if args.device == "cuda" and nproc > gpus:
                print(f"{nproc} processes: skipped, this machine has {gpus} GPU(s)")
                runs.append({"nproc": nproc, "skipped": f"{gpus} GPU(s)"})
                continue
            r = run_stage(work, args, nproc)
            if r is None:
                return 1
            runs.append(r)
            print(
                f"{nproc} process(es): {r['epoch_seconds']:.2f} s/epoch, "
                f"{r['images_per_s']:.0f} images/s, loss {r['final_loss']:.3f}, {r['precision']}"
            )
    result = {
        "gpu": torch.cuda.get_device_name(0) if gpus else None,
        "gpus": gpus,
        "torch": torch.__version__,
        "images": args.images,
        "batch": args.batch,
        "encoder": args.encoder,
        "epochs": args.epochs,
        "runs": runs,
    }
    return save(args.out, result, args.device)


if __name__ == "__main__":
    sys.exit(main())

"""SimCLR pretraining throughput on one CUDA GPU: our full training step at the CIFAR scale.

Run from the repository root on a machine with a CUDA GPU:

    .venv/bin/python benchmarks/gpu_throughput.py [--batch 512] [--steps 20] [--epochs 3]
        [--compile] [--out benchmarks/results/gpu_throughput.json]

It runs `simclr.train.pretrain` itself with device="cuda": ResNet-18 with the CIFAR stem at
32 px, v1 head 512-512-128, batch 512, bf16 autocast, channels_last, LARS, the paper's
augmentations made on the GPU by `simclr.augment`, NT-Xent, backward and the LARS step, on
synthetic uint8 images (no dataset needed). Each epoch is `--steps` steps; the first epoch is
warm-up (cuDNN autotuning, torch.compile) and is discarded; pretrain synchronizes the device
at the end of every epoch (it copies the epoch's losses to the host), and this script
synchronizes before and after the run, so each epoch's time covers all its GPU work.

Reported: source images per second (two views each), median over the timed epochs.
Published reference: about 4,200 images/s on an A100 for a ResNet-18 SimCLR at CIFAR-10 scale
(dkobak/simclr-cifar10).
"""

from __future__ import annotations

import argparse
import logging
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from record import ROOT, command, now, save  # noqa: E402

PUBLISHED_A100 = 4200.0  # images/s, dkobak/simclr-cifar10, ResNet-18, CIFAR-10
MODEL = "resnet18, CIFAR stem, v1 head 512-512-128"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=512, help="source images per step")
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile encoder and head")
    p.add_argument("--loader-workers", type=int, default=0)
    p.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default="cuda",
        help="cpu: a smoke test of this script only (use tiny --batch/--steps), not a figure",
    )
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "gpu_throughput.json"
    )
    args = p.parse_args(argv)
    if min(args.batch, args.steps, args.epochs) < 1 or args.batch < 2:
        p.error("need --batch >= 2, --steps >= 1, --epochs >= 1")
    return args


def run(args: argparse.Namespace):
    """`pretrain` on synthetic images, one warm-up epoch and `--epochs` timed ones: (its
    result, the wall seconds of the whole run, the channels_last it used)."""
    import numpy as np
    import torch

    from simclr.config import PAPER_AUGMENT, ModelConfig, PretrainConfig
    from simclr.train import pretrain

    n = args.batch * args.steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, args.image_size, args.image_size, 3), dtype=np.uint8)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    model = ModelConfig(encoder="resnet18", head="v1", proj_hidden_dim=512, proj_dim=128)
    cfg = PretrainConfig(
        epochs=args.epochs + 1,
        batch_size=args.batch,
        device=args.device,
        precision=args.precision,
        channels_last=not args.no_channels_last,
        compile=args.compile,
        optimizer="lars",
        warmup_epochs=0,
        loader_workers=args.loader_workers,
        augment=PAPER_AUGMENT,
    )
    cfg.check("pretrain")
    torch.backends.cudnn.benchmark = True
    sync()
    start = time.perf_counter()
    out = pretrain(images, model, cfg, seed=0)
    sync()
    return out, time.perf_counter() - start, cfg.channels_last


def device_name(device: str) -> str:
    import torch

    return (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU smoke test ({platform.machine()})"
    )


def as_record(args: argparse.Namespace, out, total_s: float, device: str) -> dict:
    import torch

    cuda = args.device == "cuda"
    rates = [h["images_per_s"] for h in out.history[1:]]
    return {
        "date": now(),
        "command": command(),
        "device": device,
        "settings": {**vars(args), "out": str(args.out), "model": MODEL, "cudnn_benchmark": True},
        "environment": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if cuda else None,
            "gpu_count": torch.cuda.device_count(),
            "max_memory_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        },
        "images_per_s": {
            "median": statistics.median(rates),
            "min": min(rates),
            "max": max(rates),
            "raw": rates,
        },
        "warmup_images_per_s": out.history[0]["images_per_s"],
        "epoch_seconds": [h["epoch_seconds"] for h in out.history],
        "loss": [h["loss"] for h in out.history],
        "total_seconds": total_s,
        "published_a100_images_per_s": PUBLISHED_A100,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_throughput: no CUDA device is available to torch "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "run this on a machine with an NVIDIA GPU. For CPU figures use "
            "benchmarks/pretrain_throughput.py.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    out, total_s, channels_last = run(args)
    result = as_record(args, out, total_s, device_name(args.device))
    rates = result["images_per_s"]
    print(
        f"\n{result['device']}: {rates['median']:.0f} source images/s "
        f"(median of {len(rates['raw'])} epochs of {args.steps} steps x {args.batch}; "
        f"min {rates['min']:.0f}, max {rates['max']:.0f}; warm-up epoch "
        f"{result['warmup_images_per_s']:.0f}); {out.precision}, "
        f"channels_last={channels_last}, compile={args.compile}; "
        f"published ResNet-18 CIFAR-10 on an A100: ~{PUBLISHED_A100:.0f} images/s"
    )
    return save(args.out, result)


if __name__ == "__main__":
    raise SystemExit(main())

"""SimCLR pretraining throughput on one CUDA GPU: our full training step at the CIFAR scale.

Run from the repository root on a machine with a CUDA GPU:

    python -m benchmarks.gpu.throughput [--batch 512] [--steps 20] [--epochs 3]
        [--encoder resnet18|resnet50] [--image-size 32] [--compile] [--reference ours|lightly]
        [--loader-workers 0] [--out benchmarks/results/gpu_throughput.jsonl]

It runs `simclr.train.pretrain` itself with device="cuda": ResNet-18 with the CIFAR stem at
32 px, v1 head 512-512-128, batch 512, bf16 autocast, channels_last, LARS, the paper's
augmentations made on the GPU by `simclr.augment`, NT-Xent, backward and the LARS step, on
synthetic uint8 images (no dataset needed). Each epoch is `--steps` steps; the first epoch is
warm-up (cuDNN autotuning, torch.compile) and is discarded; pretrain synchronizes the device
at the end of every epoch (it copies the epoch's losses to the host), and this script
synchronizes before and after the run, so each epoch's time covers all its GPU work.

Reported: source images per second (two views each), median over the timed epochs; the peak
GPU memory; the share of a step spent making the views (`simclr.device.to_images` and two
`simclr.augment.simclr_view` calls on one batch, timed alone by CUDA events, median of
`--steps`, over the step time); the model's FLOP per source image (torch's FlopCounterMode on
one forward of encoder + head, x3 for forward + backward, x2 views) and the model FLOP
utilisation against the H200's dense bf16 peak (datasheet) and the matrix rate measured on
such a machine (the lending service's notes). With `--compile`, torch._dynamo's graph-break counts.

`--reference lightly` measures instead the lightly reference of benchmarks.cpu.pretrain_throughput
on the same device: its SimCLRTransform per PIL image in a DataLoader with `--loader-workers`
processes (pinned memory), the same encoder type with SimCLRProjectionHead, NTXentLoss (fp32,
as ours) and lightly's LARS, under the same autocast and memory format as ours, each view
through the model on its own (lightly's example). One warm-up step, then `--epochs` repeats of
`--steps` steps, the device synchronized at the end of each.

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

from benchmarks.common import results_file, save

PUBLISHED_A100 = 4200.0  # images/s, dkobak/simclr-cifar10, ResNet-18, CIFAR-10
GOAL_H200 = 8400.0  # images/s, issue 21's goal for ResNet-18 at 32 px on the H200
# Dense bf16 peaks: the H100/H200 SXM datasheet, and an 8192^3 bf16 matmul measured on one of
# the lent H200s (the lending service's machine notes, 2026-10-28).
BF16_PEAK_DATASHEET = 989.4e12
BF16_MATMUL_MEASURED = 788e12
HIDDEN = {"resnet18": 512, "resnet50": 2048}  # the head's hidden width = the encoder's h


def model_config(encoder: str):
    from simclr.config import ModelConfig

    return ModelConfig(encoder=encoder, head="v1", proj_hidden_dim=HIDDEN[encoder], proj_dim=128)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=512, help="source images per step")
    p.add_argument("--steps", type=int, default=20, help="steps per epoch")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--image-size", type=int, default=32)
    p.add_argument("--encoder", choices=sorted(HIDDEN), default="resnet18")
    p.add_argument(
        "--reference",
        choices=["ours", "lightly"],
        default="ours",
        help="lightly: the reference of pretrain_throughput.py on this device instead of ours",
    )
    p.add_argument("--precision", choices=["bf16", "fp16", "fp32"], default="bf16")
    p.add_argument("--no-channels-last", action="store_true")
    p.add_argument("--compile", action="store_true", help="torch.compile encoder and head")
    p.add_argument("--loader-workers", type=int, default=0, help="DataLoader processes")
    p.add_argument(
        "--device",
        choices=["cuda", "cpu"],
        default="cuda",
        help="cpu: a smoke test of this script only (use tiny --batch/--steps), not a figure",
    )
    p.add_argument("--out", type=Path, default=results_file("gpu_throughput"))
    args = p.parse_args(argv)
    if min(args.batch, args.steps, args.epochs) < 1 or args.batch < 2:
        p.error("need --batch >= 2, --steps >= 1, --epochs >= 1")
    return args


def synthetic(args: argparse.Namespace):
    """`batch x steps` random uint8 NHWC RGB images (the views' cost does not depend on them)."""
    import numpy as np

    n, size = args.batch * args.steps, args.image_size
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def run(args: argparse.Namespace):
    """`pretrain` on synthetic images, one warm-up epoch and `--epochs` timed ones: (its
    result, the wall seconds of the whole run, the channels_last it used)."""
    import torch

    from simclr.config import AugmentConfig, PretrainConfig
    from simclr.train import Recipe, pretrain
    from tasks.arguments import recipe_kwargs

    images = synthetic(args)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
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
        augment=AugmentConfig(),
    )
    torch.backends.cudnn.benchmark = True
    sync()
    start = time.perf_counter()
    out = pretrain(
        images, model_config(args.encoder).model_dump(), Recipe(**recipe_kwargs(cfg)), seed=0
    )
    sync()
    return out, time.perf_counter() - start, cfg.channels_last


def timer(device: str):
    """A function that runs `fn` and returns its seconds: CUDA events on the GPU (the time of
    the GPU work it queued), the wall clock on the CPU."""
    import torch

    def cuda(fn) -> float:
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        return start.elapsed_time(end) / 1000

    def wall(fn) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return cuda if device == "cuda" else wall


def augment_seconds(args: argparse.Namespace) -> float:
    """Median seconds of making one step's views alone, as pretrain's step does: the uint8
    batch (pinned on CUDA) to float on the device, two views, concatenated, memory format."""
    import torch

    from simclr.augment import simclr_view
    from simclr.device import to_images

    device = torch.device(args.device)
    fmt = fmt_of(args)
    x_u8 = torch.from_numpy(synthetic(args)[: args.batch])
    x_u8 = x_u8.pin_memory() if args.device == "cuda" else x_u8
    g = torch.Generator(device=device).manual_seed(1)

    def views():
        x = to_images(x_u8, device)
        torch.cat([simclr_view(x, g) for _ in range(2)]).contiguous(memory_format=fmt)

    measure = timer(args.device)
    measure(views)  # warm-up
    return statistics.median(measure(views) for _ in range(args.steps))


def flop_per_image(args: argparse.Namespace) -> float:
    """Model FLOP per source image of a training step: one forward of encoder + head counted
    by torch (a multiply-add is 2 FLOP), x3 for forward + backward, x2 views."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from simclr.models import build_model

    encoder, head = build_model(3, args.image_size, **model_config(args.encoder).model_dump())
    x = torch.zeros(2, 3, args.image_size, args.image_size)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        head(encoder(x))
    return counter.get_total_flops() / len(x) * 3 * 2


def graph_breaks() -> dict[str, int]:
    """torch._dynamo's graph-break reasons and counts so far in this process."""
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


def lightly_model(args: argparse.Namespace, device):
    """The reference's network, loss and optimizer (benchmarks.cpu.pretrain_throughput's
    lightly_step), on `device` in our memory format."""
    import torch
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.utils.lars import LARS

    from benchmarks.cpu.pretrain_throughput import LR, MOMENTUM, TEMPERATURE, WEIGHT_DECAY
    from simclr.models import build_model

    torch.manual_seed(0)
    hidden = HIDDEN[args.encoder]
    encoder = build_model(3, args.image_size, **model_config(args.encoder).model_dump())[0]
    model = torch.nn.Sequential(encoder, SimCLRProjectionHead(hidden, hidden, 128))
    model = model.to(device, memory_format=fmt_of(args))
    lr = LR * args.batch / 256
    optimizer = LARS(model.parameters(), lr=lr, momentum=MOMENTUM, weight_decay=WEIGHT_DECAY)
    return model, NTXentLoss(temperature=TEMPERATURE), optimizer


def fmt_of(args: argparse.Namespace):
    import torch

    return torch.contiguous_format if args.no_channels_last else torch.channels_last


def lightly_loader(args: argparse.Namespace):
    """lightly's SimCLRTransform per PIL image in a DataLoader, endless."""
    import torch

    from benchmarks.cpu.pretrain_throughput import PILDataset, lightly_transform

    loader = torch.utils.data.DataLoader(
        PILDataset(synthetic(args), lightly_transform()),
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=args.loader_workers,
        pin_memory=args.device == "cuda",
        persistent_workers=args.loader_workers > 0,
        generator=torch.Generator().manual_seed(0),
    )
    while True:
        yield from loader


def run_lightly(args: argparse.Namespace) -> tuple[list[float], float, list[float]]:
    """(images/s of each repeat, the warm-up step's seconds, the losses)."""
    import torch

    from simclr.device import autocast_dtype

    device = torch.device(args.device)
    torch.backends.cudnn.benchmark = True
    model, criterion, optimizer = lightly_model(args, device)
    dtype = autocast_dtype(args.precision, device)
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    losses = []

    def step(views) -> None:
        x0, x1 = (
            v.to(device, non_blocking=True).contiguous(memory_format=fmt_of(args)) for v in views
        )
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            z0, z1 = model(x0), model(x1)
        loss = criterion(z0.float(), z1.float())  # fp32, as our NT-Xent
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.detach())

    batches = lightly_loader(args)
    start = time.perf_counter()
    step(next(batches))  # warm-up: worker start, cuDNN autotuning
    sync()
    warmup_s, rates = time.perf_counter() - start, []
    for _ in range(args.epochs):
        start = time.perf_counter()
        for _ in range(args.steps):
            step(next(batches))
        sync()
        rates.append(args.steps * args.batch / (time.perf_counter() - start))
        logging.getLogger("benchmark").info("lightly: %.0f images/s", rates[-1])
    batches.close()
    return rates, warmup_s, [float(v) for v in torch.stack(losses)]


def lightly_record(args: argparse.Namespace, device: str) -> dict:
    import torch

    from simclr.device import autocast_dtype
    from simclr.train import PRECISIONS

    rates, warmup_s, losses = run_lightly(args)
    return {
        "device": device,
        "reference": "lightly 1.6.0 (benchmarks.cpu.pretrain_throughput's step and transform)",
        "settings": {**vars(args), "out": str(args.out), "cudnn_benchmark": True},
        "precision": PRECISIONS[autocast_dtype(args.precision, torch.device(args.device))],
        "environment": environment(args),
        "images_per_s": summary(rates),
        "warmup_step_seconds": warmup_s,
        "loss": losses,
        "utilisation": utilisation(args, statistics.median(rates)),
    }


def device_name(device: str) -> str:
    import torch

    return (
        torch.cuda.get_device_name()
        if device == "cuda"
        else f"CPU smoke test ({platform.machine()})"
    )


def environment(args: argparse.Namespace) -> dict:
    import torch

    cuda = args.device == "cuda"
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu_count": torch.cuda.device_count(),
        "max_memory_allocated_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "max_memory_reserved_gib": torch.cuda.max_memory_reserved() / 2**30 if cuda else None,
    }


def summary(rates: list[float]) -> dict:
    return {"median": statistics.median(rates), "min": min(rates), "max": max(rates), "raw": rates}


def utilisation(args: argparse.Namespace, images_per_s: float) -> dict:
    """The step's model FLOP rate and its share of the bf16 peaks (MFU)."""
    flop = flop_per_image(args)
    return {
        "model_gflop_per_source_image": flop / 1e9,
        "model_tflop_per_s": flop * images_per_s / 1e12,
        "mfu_vs_datasheet_bf16": flop * images_per_s / BF16_PEAK_DATASHEET,
        "mfu_vs_measured_bf16_matmul": flop * images_per_s / BF16_MATMUL_MEASURED,
    }


def as_record(args: argparse.Namespace, out, total_s: float, device: str) -> dict:
    rates = [h["images_per_s"] for h in out.history[1:]]
    median = statistics.median(rates)
    aug_s = augment_seconds(args)
    step_s = args.batch / median
    return {
        "device": device,
        "settings": {**vars(args), "out": str(args.out), "cudnn_benchmark": True},
        "model": model_config(args.encoder).model_dump(),
        "precision": out.precision,
        "environment": environment(args),
        "images_per_s": summary(rates),
        "warmup_images_per_s": out.history[0]["images_per_s"],
        "epoch_seconds": [h["epoch_seconds"] for h in out.history],
        "loss": [h["loss"] for h in out.history],
        "total_seconds": total_s,
        "augment": {"seconds_per_step": aug_s, "step_seconds": step_s, "share": aug_s / step_s},
        "utilisation": utilisation(args, median),
        "graph_breaks": graph_breaks() if args.compile else None,
        "published_a100_images_per_s": PUBLISHED_A100,
        "goal_h200_images_per_s": GOAL_H200,
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_throughput: no CUDA device is available to torch "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}); "
            "run this on a machine with an NVIDIA GPU. For CPU figures use "
            "python -m benchmarks.cpu.pretrain_throughput.",
            file=sys.stderr,
        )
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.reference == "lightly":
        result = lightly_record(args, device_name(args.device))
        what = f"lightly reference, {args.loader_workers} loader workers, {result['precision']}"
    else:
        out, total_s, channels_last = run(args)
        result = as_record(args, out, total_s, device_name(args.device))
        what = (
            f"ours, {out.precision}, channels_last={channels_last}, compile={args.compile}, "
            f"augmentation {100 * result['augment']['share']:.1f}% of the step"
        )
    rates = result["images_per_s"]
    print(
        f"\n{result['device']}: {rates['median']:.0f} source images/s "
        f"(median of {len(rates['raw'])} repeats of {args.steps} steps x {args.batch}, "
        f"{args.encoder} at {args.image_size} px; min {rates['min']:.0f}, max {rates['max']:.0f}); "
        f"{what}; MFU {100 * result['utilisation']['mfu_vs_datasheet_bf16']:.1f}% of the bf16 "
        f"datasheet peak; published ResNet-18 CIFAR-10 on an A100: ~{PUBLISHED_A100:.0f} images/s"
    )
    return save(args.out, result, args.device)


if __name__ == "__main__":
    raise SystemExit(main())

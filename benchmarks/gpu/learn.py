"""A real pretraining run that fits a time budget on the GPU, then the linear probe and kNN on
frozen features against the same encoder at random init (issue 21, part 3).

    python3 -m benchmarks.gpu.learn --data .gpu_data/cifar10dev --seconds 150 \
        --images-per-s 12000 [--device cuda] [--out benchmarks/results/gpu_learn.jsonl]

The recipe is benchmarks.cpu.cifar10_dev_probe's (the paper's CIFAR augmentations with colour
jitter strength 0.5, LARS lr 1.0 x batch/256, temperature 0.5, warmup a fifth of the epochs up to
5), here with ResNet-18 (CIFAR stem), batch 512, bf16 autocast and channels_last on the device,
the kNN monitor off. The epochs are as many as `--seconds` allow at `--images-per-s` (the rate
benchmarks.gpu.throughput measured for this configuration in the same call), at least 1; `--epochs`
sets them directly. The data is the prepared folder tools/gpu/data.py writes: train (10,000
images) is pretrained on without labels, test (the 2,000 val images) scores the probes, which
see the training labels: logistic regression with C = 1 (as the CPU figures) and kNN k 200,
T 0.1.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from benchmarks.common import results_file, save
from benchmarks.cpu.cifar10_dev_probe import pretrain_config, scores  # as the CPU figures

BATCH = 512


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="a prepared dataset folder")
    p.add_argument("--seconds", type=float, default=150.0, help="pretraining time budget")
    p.add_argument("--images-per-s", type=float, help="the measured rate that sizes the epochs")
    p.add_argument("--epochs", type=int, help="instead of --seconds / --images-per-s")
    p.add_argument("--batch", type=int, default=BATCH)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument(
        "--limit", type=int, help="about N train and N test images, all classes (a smoke test)"
    )
    p.add_argument("--out", type=Path, default=results_file("gpu_learn"))
    args = p.parse_args(argv)
    if args.epochs is None and args.images_per_s is None:
        p.error("give --epochs, or --images-per-s (with --seconds)")
    return args


def epochs_for(args: argparse.Namespace, n: int) -> int:
    if args.epochs is not None:
        return args.epochs
    return max(1, int(args.seconds * args.images_per_s / (n // args.batch * args.batch)))


def thin(split, limit: int | None):
    """Every k-th image of a split sorted by class, about `limit` of them (all classes stay)."""
    from simclr.data.prepared import Split

    step = max(1, len(split.labels) // limit) if limit else 1
    return Split(split.images[::step], split.labels[::step])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from simclr.config import ModelConfig
    from simclr.data.prepared import load_prepared
    from simclr.device import seed_everything
    from simclr.models import build_model
    from simclr.train import Recipe, pretrain
    from tasks.arguments import recipe_kwargs

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    data = load_prepared(args.data, mmap=False)
    train, test = (thin(s, args.limit) for s in (data.train, data.test))
    epochs = epochs_for(args, len(train.images))
    base = argparse.Namespace(precision="bf16", threads=None)
    cfg = pretrain_config(base, epochs).model_copy(
        update={
            "batch_size": args.batch,
            "device": args.device,
            "channels_last": True,
            "knn_every": 0,
        }
    )
    model_cfg = ModelConfig(encoder="resnet18")
    start = time.perf_counter()
    result = pretrain(train.images, model_cfg.model_dump(), Recipe(**recipe_kwargs(cfg)), seed=0)
    seconds = time.perf_counter() - start
    device = result.device
    seed_everything(0, device)
    random_encoder = build_model(3, train.images.shape[1], **model_cfg.model_dump())[0].to(device)
    start = time.perf_counter()
    by_encoder = {
        name: scores(enc, train, test, device)
        for name, enc in {"simclr": result.encoder, "random_init": random_encoder}.items()
    }
    record = {
        "device": torch.cuda.get_device_name() if device.type == "cuda" else "CPU smoke test",
        "torch": torch.__version__,
        "train_images": len(train.images),
        "test_images": len(test.images),
        "config": cfg.model_dump(),
        "epochs": epochs,
        "precision": result.precision,
        "pretrain_seconds": seconds,
        "probe_seconds": time.perf_counter() - start,
        "history": result.history,
        "scores": by_encoder,
    }
    print(f"\nresnet18, {epochs} epochs, {result.precision}, {seconds:.0f} s pretraining")
    print("| encoder | linear probe | kNN (k 200) |\n| --- | ---: | ---: |")
    for name, s in by_encoder.items():
        print(f"| {name} | {s['linear_probe']:.4f} | {s['knn']:.4f} |")
    return save(args.out, record, args.device)


if __name__ == "__main__":
    raise SystemExit(main())

"""A short SimCLR pretraining on the CIFAR-10 dev folder, on the CPU, measured by linear probe
and kNN against the same encoder left at its random initialisation.

Run from the repository root:

    python -m benchmarks.cpu.cifar10_dev_probe --data CIFAR10_DEV [--epochs 15 | --seconds 600]
        [--encoder small] [--precision auto] [--threads 2]
        [--out benchmarks/results/cifar10_dev_probe.jsonl]

The 10,000 training images (32 px RGB, `--data`'s train/) are pretrained on without labels
with the paper's CIFAR augmentations (crop area 0.08-1, flip 0.5, colour jitter strength 0.5
with p 0.8, grayscale 0.2, no blur at 32 px), LARS, batch 256, temperature 0.5. The 2,000
`val` images are the test split. Both encoders are then probed on frozen features h: a
standardized logistic regression on all training labels (as the evaluate stage does at
fraction 1.0) and the weighted cosine kNN monitor (k 200, T 0.1). A sanity check that the
method learns on natural images, not a benchmark of the paper's numbers (those need ResNet-50
and hundreds of epochs on a GPU).

With `--seconds S`, the number of epochs is what fits in S seconds: one epoch is run first with
the same settings (not counted, its model discarded) and timed, then the run has
floor(S / that time) epochs, so that its schedule (warmup, cosine decay) completes, without the
kNN monitor. This is the
held-out check of a faster training step: the same wall-clock budget before and after.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import torch

from benchmarks.common import results_file, save
from simclr.config import AugmentConfig, ModelConfig, PretrainConfig
from simclr.data.imagefolder import load_image_folder
from simclr.device import seed_everything
from simclr.features import extract_features
from simclr.models import build_model
from simclr.probe import accuracies, knn_accuracy, logistic_probe
from simclr.train import Labelled, Recipe, pretrain
from tasks.arguments import recipe_kwargs

CPU = torch.device("cpu")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the CIFAR-10 dev folder")
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--seconds", type=float, help="a wall-clock budget instead of --epochs")
    ap.add_argument("--encoder", default="small", help="small, resnet18, resnet34, resnet50")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=results_file("cifar10_dev_probe"))
    return ap.parse_args()


def pretrain_config(args: argparse.Namespace, epochs: int) -> PretrainConfig:
    return PretrainConfig(
        epochs=epochs,
        batch_size=256,
        optimizer="lars",
        lr=1.0,
        warmup_epochs=min(5, max(1, epochs // 5)),
        temperature=0.5,
        device="cpu",
        precision=args.precision,
        threads=args.threads,
        knn_every=5 if epochs > 1 else 0,
        channels_last=False,
        augment=AugmentConfig().model_copy(update={"jitter_strength": 0.5}),
    )


def scores(encoder, train, test, device: torch.device = CPU) -> dict[str, float]:
    """Linear probe and kNN (k 200, T 0.1) accuracy on `encoder`'s frozen features (fp32)."""
    encoder = encoder.to(device).float()
    tr = extract_features(encoder, train.images, device)
    te = extract_features(encoder, test.images, device)
    # A fixed C = 1 (a one-value grid), as when the recorded figures were measured.
    fit = logistic_probe(tr, train.labels, te, (1.0,), 0.2, 1000, seed=0)
    return {
        "linear_probe": accuracies(fit.predictions, test.labels)[0],
        "knn": knn_accuracy(tr, train.labels, te, test.labels, k=200, temperature=0.1),
    }


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train = load_image_folder(args.data / "train", image_size=32)
    test = load_image_folder(args.data / "val", image_size=32)
    model_cfg = ModelConfig(encoder=args.encoder)
    epochs, calibration = args.epochs, None
    if args.seconds:
        start = time.perf_counter()
        pretrain(
            train.images,
            model_cfg.model_dump(),
            Recipe(**recipe_kwargs(pretrain_config(args, 1))),
            args.seed,
        )
        calibration = time.perf_counter() - start
        epochs = max(1, int(args.seconds // calibration))
        logging.info("one epoch: %.1f s; %d epochs in %.0f s", calibration, epochs, args.seconds)
    start = time.perf_counter()
    # Under a budget the kNN monitor is off: its time would not be training.
    monitor = Labelled(train.images, train.labels, test.images, test.labels)
    monitor = None if args.seconds else monitor
    cfg = pretrain_config(args, epochs)
    result = pretrain(
        train.images,
        model_cfg.model_dump(),
        Recipe(**recipe_kwargs(cfg)),
        args.seed,
        monitor=monitor,
    )
    seconds = time.perf_counter() - start

    seed_everything(args.seed, CPU, args.threads)
    random_encoder, _ = build_model(3, 32, **model_cfg.model_dump())
    encoders = {"simclr": result.encoder, "random_init": random_encoder}
    by_encoder = {name: scores(encoder, train, test) for name, encoder in encoders.items()}
    report = {
        "train_images": len(train.images),
        "test_images": len(test.images),
        "encoder": args.encoder,
        "epochs": epochs,
        "budget_seconds": args.seconds,
        "calibration_epoch_seconds": calibration,
        "precision": result.precision,
        "pretrain_seconds": round(seconds, 1),
        "history": result.history,
        "scores": by_encoder,
    }
    print(f"\n{args.encoder}, {epochs} epochs, {result.precision}, {seconds:.0f} s")
    print("| encoder | linear probe | kNN (k 200) |\n| --- | ---: | ---: |")
    for name, s in by_encoder.items():
        print(f"| {name} | {s['linear_probe']:.4f} | {s['knn']:.4f} |")
    return save(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())

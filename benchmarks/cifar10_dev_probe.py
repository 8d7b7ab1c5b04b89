"""A short SimCLR pretraining on the CIFAR-10 dev folder, on the CPU, measured by linear probe
and kNN against the same encoder left at its random initialisation.

Run from the repository root:

    .venv/bin/python benchmarks/cifar10_dev_probe.py [--epochs 15] [--encoder small]
        [--precision auto] [--threads 2] [--out benchmarks/results/cifar10_dev_probe.json]

The 10,000 training images (32 px RGB, `cifar10-dev/train`) are pretrained on without labels
with the paper's CIFAR augmentations (crop area 0.08-1, flip 0.5, colour jitter strength 0.5
with p 0.8, grayscale 0.2, no blur at 32 px), LARS, batch 256, temperature 0.5. The 2,000
`val` images are the test split. Both encoders are then probed on frozen features h: a
standardized logistic regression on all training labels (as the evaluate stage does at
fraction 1.0) and the weighted cosine kNN monitor (k 200, T 0.1). A sanity check that the
method learns on natural images, not a benchmark of the paper's numbers (those need ResNet-50
and hundreds of epochs on a GPU).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing

from simclr.config import PAPER_AUGMENT, ModelConfig, PretrainConfig  # noqa: E402
from simclr.data.imagefolder import load_image_folder  # noqa: E402
from simclr.device import seed_everything  # noqa: E402
from simclr.features import extract_features  # noqa: E402
from simclr.models import build_model  # noqa: E402
from simclr.probe import accuracies, knn_accuracy, logistic_probe  # noqa: E402
from simclr.train import Labelled, pretrain  # noqa: E402

DATA = ROOT.parent / "shared" / "datasets" / "cifar10-dev"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--encoder", default="small", help="small, resnet18, resnet34, resnet50")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/cifar10_dev_probe.json")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    train = load_image_folder(args.data / "train", image_size=32)
    test = load_image_folder(args.data / "val", image_size=32)
    model_cfg = ModelConfig(encoder=args.encoder)
    cfg = PretrainConfig(
        epochs=args.epochs,
        batch_size=256,
        optimizer="lars",
        lr=1.0,
        warmup_epochs=min(5, max(1, args.epochs // 5)),
        temperature=0.5,
        device="cpu",
        precision=args.precision,
        threads=args.threads,
        knn_every=5,
        channels_last=False,
        augment=PAPER_AUGMENT.model_copy(update={"jitter_strength": 0.5}),
    )
    start = time.perf_counter()
    monitor = Labelled(train.images, train.labels, test.images, test.labels)
    result = pretrain(train.images, model_cfg, cfg, args.seed, monitor=monitor)
    seconds = time.perf_counter() - start

    seed_everything(args.seed, torch.device("cpu"), args.threads)
    random_encoder, _ = build_model(model_cfg, 3, 32)
    scores = {}
    for name, encoder in (("simclr", result.encoder), ("random_init", random_encoder)):
        encoder = encoder.to("cpu").float()
        tr = extract_features(encoder, train.images, torch.device("cpu"))
        te = extract_features(encoder, test.images, torch.device("cpu"))
        scores[name] = {
            # A fixed C = 1 (a one-value grid), as when the recorded figures were measured.
            "linear_probe": accuracies(
                logistic_probe(tr, train.labels, te, (1.0,), 0.2, 1000, seed=0).predictions,
                test.labels,
            )[0],
            "knn": knn_accuracy(tr, train.labels, te, test.labels, k=200, temperature=0.1),
        }
    report = {
        "command": " ".join(sys.argv),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "train_images": len(train.images),
        "test_images": len(test.images),
        "encoder": args.encoder,
        "epochs": args.epochs,
        "precision": result.precision,
        "pretrain_seconds": round(seconds, 1),
        "history": result.history,
        "scores": scores,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\n{args.encoder}, {args.epochs} epochs, {result.precision}, {seconds:.0f} s")
    print("| encoder | linear probe | kNN (k 200) |\n| --- | ---: | ---: |")
    for name, s in scores.items():
        print(f"| {name} | {s['linear_probe']:.4f} | {s['knn']:.4f} |")
    print(f"-> {args.out}")


if __name__ == "__main__":
    main()

"""Inference throughput of the frozen encoder (what the probes, kNN and the pretraining monitor
read) by batch size, with BatchNorm folded into the convolutions (`for_inference`, what
`extract_features` runs) or not: the figures behind `evaluate.batch_size`'s default.

    python -m benchmarks.cpu.inference_batch [--images 4096] [--batches 512,128,64] \
        [--repeats 3] [--threads 2] [--encoder small]
        [--out benchmarks/results/inference_batch.jsonl]

`--images` random 32 px RGB uint8 images through the encoder in eval mode, batch by batch
(inputs channels_last, as `extract_features` does), fp32, one process; every configuration is
timed `--repeats` times, in turn, so that all share the machine's noise; the table gives the
median images/s and its ratio to the current default (folded, `evaluate.batch_size`).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import results_file, save
from simclr.device import to_images
from simclr.features import BATCH_SIZE, for_inference
from simclr.models import build_model


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=4096)
    p.add_argument(
        "--batches", type=lambda v: [int(b) for b in v.split(",")], default=[512, BATCH_SIZE, 64]
    )
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--encoder", default="small")
    p.add_argument("--out", type=Path, default=results_file("inference_batch"))
    return p.parse_args(argv)


@torch.inference_mode()
def images_per_s(model: torch.nn.Module, images: np.ndarray, batch: int) -> float:
    start = time.perf_counter()
    for i in range(0, len(images), batch):
        x = to_images(images[i : i + batch], torch.device("cpu"))
        model(x.contiguous(memory_format=torch.channels_last))
    return len(images) / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    encoder, _ = build_model(3, 32, encoder=args.encoder)
    models = {"folded": for_inference(encoder), "unfolded": encoder.eval()}
    images = np.random.default_rng(0).integers(0, 256, (args.images, 32, 32, 3), dtype=np.uint8)
    configs = [(name, b) for b in args.batches for name in models]
    for name, b in configs:  # warm-up: oneDNN picks its kernels per shape
        images_per_s(models[name], images[: 2 * b], b)
    runs = {c: [] for c in configs}
    for _ in range(args.repeats):
        for name, b in configs:
            runs[(name, b)].append(images_per_s(models[name], images, b))
    medians = {c: statistics.median(r) for c, r in runs.items()}
    default = medians.get(("folded", BATCH_SIZE))
    print(f"\n{args.encoder} encoder, {args.images} images, {args.threads} threads, fp32")
    print("| BatchNorm | batch | images/s (median) | min | max | ratio to the default |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for (name, b), r in runs.items():
        m = medians[(name, b)]
        ratio = f"{m / default:.2f}x" if default else "—"
        print(f"| {name} | {b} | {m:.0f} | {min(r):.0f} | {max(r):.0f} | {ratio} |")
    record = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "images_per_s": [{"bn": n, "batch": b, "runs": r} for (n, b), r in runs.items()],
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())

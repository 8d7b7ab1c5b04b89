"""Peak memory of the pretrain stage at two dataset sizes (generated 32 px RGB images), to show
that it does not grow with the dataset: images are memory-mapped and read batch by batch.

    python -m benchmarks.pipeline.pretrain_memory [--sizes 10000 100000] [--epochs 1] \
        [--out benchmarks/results/pretrain_memory.jsonl]

For each size: a throwaway clone of HEAD, an .npz of N images (smooth random blobs, distinct),
`datasets = {synth: {source: npz, ...}}`, a tiny encoder, then `python -m flows.prepare synth`,
`python -m flows.validate` and `python -m flows.pretrain` run for real; the pretrain process's
peak RSS (VmHWM, which counts mapped file pages while they are resident) and peak anonymous
memory (RssAnon, what it allocated itself) are sampled from /proc every 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from benchmarks.common import results_file, save
from benchmarks.pipeline.workspace import clone, load_params, run


def blobs(n: int, seed: int = 0, size: int = 32) -> np.ndarray:
    """n distinct images: 4x4 random colours upsampled to size x size, plus pixel noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(0, n, 10_000):
        m = min(10_000, n - i)
        coarse = rng.integers(0, 256, (m, 4, 4, 3)).astype(np.int16)
        fine = np.repeat(np.repeat(coarse, size // 4, 1), size // 4, 2)
        fine += rng.integers(-8, 9, fine.shape, dtype=np.int16)
        out[i : i + m] = fine.clip(0, 255)
    return out


def measure(n: int, epochs: int) -> dict:
    params = load_params()
    params["datasets"] = {"synth": {"source": "npz", "path": "synth.npz", "image_size": 32}}
    params["validate"]["max_imbalance"] = 10.0
    params["model"].update(widths=[16, 32], blocks=[1, 1], proj_hidden_dim=64, proj_dim=32)
    params["pretrain"].update(
        dataset="synth", epochs=epochs, warmup_epochs=0, knn_every=0, batch_size=512
    )
    params["transfer"] = {"datasets": []}
    path = clone(params)
    try:
        images = blobs(n)
        labels = np.arange(n) % 10
        np.savez(path / "synth.npz", images=images, labels=labels)
        del images
        steps = {
            "prepare": run(path, "python", "-m", "flows.prepare", "synth"),
            "validate": run(path, "python", "-m", "flows.validate"),
            "pretrain": run(path, "python", "-m", "flows.pretrain", mapped="images.npy"),
        }
        metrics = json.loads((path / "reports/pretrain/0/metrics.json").read_text())
        data_mib = (path / "data/prepared/synth/train/images.npy").stat().st_size / 2**20
    finally:
        shutil.rmtree(path, ignore_errors=True)
    return {
        "images": n,
        "train_images_mib": round(data_mib, 1),
        "images_per_s": round(metrics["images_per_s"], 1),
        **{
            name: {k: v for k, v in s.items() if k not in ("output", "command")}
            for name, s in steps.items()
        },
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=results_file("pretrain_memory"))
    args = ap.parse_args()
    rows = [measure(n, args.epochs) for n in args.sizes]
    base = rows[0]["pretrain"]
    print("| images | train images (MiB) | pretrain peak RSS (MiB) | peak anonymous (MiB) | s |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for r in rows:
        p = r["pretrain"]
        print(
            f"| {r['images']:,} | {r['train_images_mib']} | {p['peak_rss_mib']} "
            f"({p['peak_rss_mib'] / base['peak_rss_mib'] - 1:+.1%}) | {p['peak_anon_mib']} "
            f"({p['peak_anon_mib'] / base['peak_anon_mib'] - 1:+.1%}) | {p['seconds']} |"
        )
    result = {
        "epochs": args.epochs,
        "runs": rows,
    }
    return save(args.out, result)


if __name__ == "__main__":
    raise SystemExit(main())

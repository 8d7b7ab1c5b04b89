"""The whole pipeline on the CIFAR-10 dev folder as a user's image folder (train/ and val/),
in a throwaway clone of HEAD: prepare and validate timed, decoding rate, then the rest.

    python -m benchmarks.pipeline.cifar10_dev_pipeline --data CIFAR10_DEV [--epochs 5] \
        [--out benchmarks/results/cifar10_dev_pipeline.jsonl]

Params are the repository's, with the dataset and pretraining switched to the folder:
`datasets.cifar10dev = {source: imagefolder, root: .../train, test_root: .../val,
image_size: 32}`, `pretrain.dataset: cifar10dev`, `transfer.datasets: [textures]` (textures at
32 px converted to RGB, so the RGB encoder can read it), the paper's CIFAR augmentations,
one warmup epoch.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

from benchmarks.common import results_file, save
from benchmarks.pipeline.workspace import clone, load_params, run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the CIFAR-10 dev folder")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--out", type=Path, default=results_file("cifar10_dev_pipeline"))
    args = ap.parse_args()
    params = load_params()
    params["datasets"] = {
        "cifar10dev": {
            "source": "imagefolder",
            "root": str(args.data / "train"),
            "test_root": str(args.data / "val"),
            "image_size": 32,
        },
        "textures": {"source": "textures", "image_size": 32, "channels": 3},
    }
    params["pretrain"].update(
        dataset="cifar10dev", epochs=args.epochs, warmup_epochs=1, knn_every=args.epochs
    )
    params["pretrain"]["augment"].update(crop_scale=[0.08, 1.0], flip_p=0.5)
    params["transfer"] = {"datasets": ["textures"]}
    params["replicas"] = [0]  # one pretraining: the stages' cost, not their spread
    path = clone(params)
    try:
        steps = [
            run(path, "dvc", "repro", "prepare@cifar10dev"),
            run(path, "dvc", "repro", "validate"),
            run(path, "dvc", "repro"),
        ]
        decoded = re.search(
            r"read (\d+) images from imagefolder in ([\d.]+) s \((\d+) images/s\)",
            steps[0]["output"],
        )
        summary = json.loads((path / "reports/summary.json").read_text())["datasets"]
        evaluate, transfer = summary["cifar10dev"], summary["textures"]
        pretrain = json.loads((path / "reports/pretrain/0/metrics.json").read_text())
    finally:
        shutil.rmtree(path, ignore_errors=True)
    result = {
        "images_decoded": int(decoded[1]),
        "decode_seconds": float(decoded[2]),
        "decode_images_per_s": int(decoded[3]),
        # Memory sampled here would be dvc's own process, not the stages': seconds only.
        "stages": [{"command": s["command"], "seconds": s["seconds"]} for s in steps],
        "pretrain": pretrain,
        "linear_1.0": {k: v["1.0"]["mean"] for k, v in evaluate["linear"].items()},
        "textures_linear_1.0": {k: v["1.0"]["mean"] for k, v in transfer["linear"].items()},
    }
    print(json.dumps(result, indent=2))
    return save(args.out, result)


if __name__ == "__main__":
    raise SystemExit(main())

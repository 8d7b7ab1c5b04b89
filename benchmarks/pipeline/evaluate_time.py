"""Wall time of the evaluate stage (`python -m flows.evaluate`, the default protocol) at a
realistic size, and the accuracies it reports.

    python -m benchmarks.pipeline.evaluate_time cifar10dev --data CIFAR10_DEV [--epochs 5] \
        [--checkpoint FILE] [--params FILE] [--set KEY=VALUE ...] [--timeout 900]
        [--out benchmarks/results/evaluate_time.jsonl]
    python -m benchmarks.pipeline.evaluate_time generated [...]

Cases, each in a throwaway clone of HEAD (`workspace.clone`), 32 px RGB, 10 classes:

- `cifar10dev`: the CIFAR-10 dev folder (`--data`, required for this case) as a user's image
  folder (10,000 train, 2,000 val images as the test split);
- `generated`: 10,000 train and 10,000 test generated images (`blobs`: class-dependent colour
  blocks plus noise, so the probes have something to find), as an npz source.

`python -m flows.prepare <case>`, then the checkpoint: `--checkpoint FILE` is copied in when it
exists, otherwise `python -m flows.pretrain` trains one (`--epochs`, the paper's CIFAR
augmentations) and it is saved to FILE, so that a second run (another commit) evaluates the
same encoder. Then `python -m flows.evaluate` is timed (a Prefect temporary server included,
as a user's plain run has), stopped after `--timeout` seconds. The JSON records the wall time,
whether it was stopped, the seconds details.json gives each protocol, and every accuracy cell
(mean, std, n).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from ruamel.yaml import YAML

from benchmarks.common import assign, results_file, save
from benchmarks.pipeline.workspace import clone, load_params, run, stage_env
from tasks.paths import DETAILS, EVALUATE, checkpoint


def blobs_with_classes(n: int, seed: int, classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """n 32 px RGB images, balanced labels: each class has its own mean colour per 8x8 block
    (fixed by `classes`' seed), each image that mean plus a random 8x8-block pattern and noise,
    so that classes overlap but are learnable."""
    rng = np.random.default_rng(seed)
    means = np.random.default_rng(1234).integers(40, 216, (classes, 4, 4, 3))
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    coarse = means[labels] + rng.integers(-60, 61, (n, 4, 4, 3))
    fine = np.repeat(np.repeat(coarse, 8, 1), 8, 2) + rng.integers(-20, 21, (n, 32, 32, 3))
    return fine.clip(0, 255).astype(np.uint8), labels.astype(np.int64)


def case_params(case: str, data: Path, epochs: int, base: Path | None, changes: list[str]) -> dict:
    params = load_params(base)
    if case == "cifar10dev":
        entry = {"source": "imagefolder", "root": str(data / "train")}
        entry["test_root"] = str(data / "val")
    else:
        entry = {"source": "npz", "path": "generated.npz"}
    params["datasets"] = {case: {**entry, "image_size": 32}}
    params["pretrain"].update(dataset=case, epochs=epochs, warmup_epochs=1, knn_every=epochs)
    params["pretrain"]["augment"].update(crop_scale=[0.08, 1.0], flip_p=0.5)
    params["evaluate"]["finetune"]["flip_p"] = 0.5
    params["transfer"] = {"datasets": []}
    for change in changes:
        key, _, value = change.partition("=")
        try:
            assign(params, key, YAML(typ="safe").load(value))
        except (KeyError, TypeError):
            sys.exit(f"--set {change}: {key} is not a params key (dotted, as in params.yaml)")
    return params


def timed(path: Path, timeout: int, *cmd: str) -> dict:
    """`cmd` in the clone, its wall time; stopped (SIGTERM, then SIGKILL) after `timeout` s."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            ["timeout", "-k", "10", str(timeout), *cmd],
            cwd=path,
            env=stage_env(),
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        seconds = time.perf_counter() - start
    stopped = proc.returncode in (124, 137)
    if proc.returncode and not stopped:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return {"command": " ".join(cmd), "seconds": round(seconds, 1), "stopped": stopped}


def cells(details: dict) -> dict:
    """{protocol: {method: {fraction: {mean, std, n}}}} of one replica's details.json."""
    return {
        protocol: {
            method: {f: {k: c[k] for k in ("mean", "std", "n")} for f, c in by_fraction.items()}
            for method, by_fraction in details[protocol].items()
        }
        for protocol in ("linear", "knn", "finetune")
        if protocol in details
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("case", choices=["cifar10dev", "generated"])
    ap.add_argument("--data", type=Path, help="the CIFAR-10 dev folder (case cifar10dev)")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--checkpoint", type=Path, help="reuse this checkpoint, or save it here")
    ap.add_argument("--params", type=Path, help="params.yaml to start from (default: the repo's)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--out", type=Path, default=results_file("evaluate_time"))
    args = ap.parse_args()
    if args.case == "cifar10dev" and args.data is None:
        ap.error("the case cifar10dev needs --data (the CIFAR-10 dev folder)")
    data = args.data and args.data.resolve()  # the stages run in a clone elsewhere
    path = clone(case_params(args.case, data, args.epochs, args.params, args.set))
    try:
        if args.case == "generated":
            x_train, y_train = blobs_with_classes(10_000, seed=0)
            x_test, y_test = blobs_with_classes(10_000, seed=1)
            np.savez(
                path / "generated.npz",
                x_train=x_train,
                y_train=y_train,
                x_test=x_test,
                y_test=y_test,
            )
        steps = {"prepare": run(path, "python", "-m", "flows.prepare", args.case)}
        model = path / checkpoint(0)  # flows.pretrain trains the first replica, 0
        if args.checkpoint and args.checkpoint.is_file():
            shutil.copyfile(args.checkpoint, model)
        else:
            steps["pretrain"] = run(path, "python", "-m", "flows.pretrain")
            if args.checkpoint:
                shutil.copyfile(model, args.checkpoint)
        steps["evaluate"] = timed(path, args.timeout, "python", "-m", "flows.evaluate")
        details_file = path / EVALUATE / "0" / DETAILS  # replica 0's, the one trained here
        done = not steps["evaluate"]["stopped"] and details_file.is_file()
        details = json.loads(details_file.read_text()) if done else None
        metrics = cells(details) if done else None
        seconds = details["seconds"] if done else None
    finally:
        shutil.rmtree(path, ignore_errors=True)
    ev = steps["evaluate"]
    shown = f"> {ev['seconds']:.0f} s (stopped)" if ev["stopped"] else f"{ev['seconds']:.1f} s"
    print(f"evaluate on {args.case}: {shown}; protocols: {seconds}")
    if metrics:
        for protocol, by_method in metrics.items():
            for method, by_fraction in by_method.items():
                row = ", ".join(
                    f"{f}: {c['mean']:.4f} ± {c['std']:.4f}" for f, c in by_fraction.items()
                )
                print(f"  {protocol} {method}: {row}")
    record = {
        "case": args.case,
        "epochs": args.epochs,
        "set": args.set,
        "steps": {k: {x: v for x, v in s.items() if x != "output"} for k, s in steps.items()},
        "evaluate_seconds": ev["seconds"],
        "evaluate_stopped": ev["stopped"],
        "protocol_seconds": seconds,
        "metrics": metrics,
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())

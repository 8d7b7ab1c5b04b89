"""Which pretraining recipe gives the best representation for a fixed wall-clock budget on
this CPU: each setting pretrains on the CIFAR-10 dev train folder for `--seconds` and is scored
by the linear probe on the val folder, as the evaluate stage's 100 % cell scores it.

Run from the repository root (one setting at a time: nothing else should run on the machine):

    python -m benchmarks.cpu.budget_grid --data CIFAR10_DEV [--seconds 600]
        [--settings init wide t0.2 wide+t0.2 ...] [--seeds 0 1]
        [--out benchmarks/results/budget_grid.jsonl]
    python -m benchmarks.cpu.budget_grid --show [--out FILE]   # the table of every record

Every setting starts from the params `simclr init` drafts for the dev train folder on a CPU
at the checkout's commit (`tasks.init_recipe.draft`; the record keeps the commit) and changes the
keys named in SETTINGS; `a+b` applies both. Since 8a0d2dc that draft is the grid's own winner
(batch 128, crop 0.2-1, temperature 0.2), so `init` is it and `earlier` is the draft the grid
started from (batch 256, crop 0.08-1, temperature 0.5), which the records before it call `init`.
The epochs are what fit the budget at the speed `tasks.init_timing.measure` times on this
machine for that setting (its 12 s of steps are not counted), with init's warm-up of 10 % of
the epochs and no kNN monitor. The real pretraining's seconds are recorded beside the budget:
the measurement is init's own, so a setting that runs faster or slower than timed says how
init would size it.

Scores, on frozen features h of the 2,000 val images (fp32): the linear probe the evaluate
stage runs at 100 % labels (logistic regression, C chosen on a held-out share of the training
labels from evaluate.C) and the weighted kNN (evaluate.knn_k, knn_temperature). One JSON line
per (setting, seed) is appended as soon as it is scored, so an interrupted grid keeps its
finished cells; the table at the end is of this invocation's cells, `--show` prints the table
of every record in `--out` (by budget, then setting) without running anything.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from pathlib import Path

import torch

from benchmarks.common import assign, results_file, save
from simclr.config import EvaluateConfig, Params
from simclr.data.imagefolder import load_image_folder
from simclr.device import select_device
from simclr.features import extract_features
from simclr.probe import accuracies, knn_accuracy, logistic_probe
from simclr.train import Recipe, pretrain
from tasks.arguments import model_kwargs, recipe_kwargs
from tasks.init_folder import survey
from tasks.init_recipe import WARMUP_SHARE, dataset_name, draft
from tasks.init_timing import measure

# Changes to init's draft; names are what `--settings` takes.
SETTINGS: dict[str, dict[str, object]] = {
    "init": {},
    "earlier": {
        "pretrain.batch_size": 256,
        "pretrain.augment.crop_scale": (0.08, 1.0),
        "pretrain.temperature": 0.5,
    },
    "wide": {"model.widths": (64, 128, 256)},
    "deep": {"model.blocks": (2, 2, 2)},
    "narrow": {"model.widths": (16, 32, 64)},
    "resnet18": {"model.encoder": "resnet18", "model.proj_hidden_dim": 512},
    "side24": {"data.image_size": 24},
    "b128": {"pretrain.batch_size": 128},
    "b512": {"pretrain.batch_size": 512},
    "lr1": {"pretrain.lr": 1.0},
    "lr0.25": {"pretrain.lr": 0.25},
    "lars": {"pretrain.optimizer": "lars", "pretrain.lr": 1.0},
    "t0.2": {"pretrain.temperature": 0.2},
    "t0.1": {"pretrain.temperature": 0.1},
    "crop0.2": {"pretrain.augment.crop_scale": (0.2, 1.0)},
    "jitter1": {"pretrain.augment.jitter_strength": 1.0},
    "jitter0.25": {"pretrain.augment.jitter_strength": 0.25},
}


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, help="the CIFAR-10 dev folder (required to run)")
    ap.add_argument("--show", action="store_true", help="print the table of --out's records")
    ap.add_argument("--seconds", type=float, default=600.0, help="pretraining budget per cell")
    ap.add_argument("--settings", nargs="+", default=["init"], help=f"of {', '.join(SETTINGS)}")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--out", type=Path, default=results_file("budget_grid"))
    args = ap.parse_args()
    if args.show and not args.out.is_file():
        ap.error(f"--show: {args.out} does not exist; run the grid first or name --out")
    if args.data is None and not args.show:
        ap.error("--data (the CIFAR-10 dev folder) is required to run the grid")
    for name in args.settings:
        unknown = [part for part in name.split("+") if part not in SETTINGS]
        if unknown:
            ap.error(f"unknown setting {', '.join(unknown)}: choose from {', '.join(SETTINGS)}")
    return args


def changes(name: str) -> dict[str, object]:
    merged: dict[str, object] = {}
    for part in name.split("+"):
        merged.update(SETTINGS[part])
    return merged


def setting_params(base: Params, name: str, seed: int) -> Params:
    """init's draft with the setting's dotted keys set, on this seed."""
    raw = base.model_dump()
    raw["seed"] = seed
    for key, value in changes(name).items():
        assign(raw, key, value)
    return Params.model_validate(raw)


def with_epochs(p: Params, epochs: int) -> Params:
    raw = p.model_dump()
    warmup = round(epochs * WARMUP_SHARE)
    raw["pretrain"].update(epochs=epochs, warmup_epochs=warmup, knn_every=0)
    return Params.model_validate(raw)


def scores(p: Params, encoder, train, test) -> dict[str, float]:
    """Linear probe (evaluate's protocol at 100 % labels) and kNN on frozen fp32 features."""
    ev: EvaluateConfig = p.evaluate
    cpu = torch.device("cpu")
    encoder = encoder.to(cpu).float()
    tr = extract_features(encoder, train.images, cpu, ev.batch_size)
    te = extract_features(encoder, test.images, cpu, ev.batch_size)
    fit = logistic_probe(tr, train.labels, te, tuple(ev.C), ev.val_fraction, ev.max_iter, seed=0)
    knn = knn_accuracy(
        tr, train.labels, te, test.labels, k=ev.knn_k, temperature=ev.knn_temperature
    )
    return {"linear_probe": accuracies(fit.predictions, test.labels)[0], "knn": knn, "C": fit.C}


def cell(p: Params, seconds: float, folders: dict) -> dict:
    """Pretrain `p` for what fits `seconds` at its measured speed, then score it."""
    timing = measure(p)
    train, test = folders[p.data.image_size]
    epochs = max(1, int(seconds / (timing.pretrain_s * len(train.images))))
    p = with_epochs(p, epochs)
    start = time.perf_counter()
    result = pretrain(
        train.images, model_kwargs(p.model), Recipe(**recipe_kwargs(p.pretrain)), p.seed
    )
    took = time.perf_counter() - start
    logging.info("%d epochs in %.0f s (budget %.0f s)", epochs, took, seconds)
    return {
        "epochs": epochs,
        "measured_images_per_s": round(1 / timing.pretrain_s, 1),
        "pretrain_seconds": round(took, 1),
        "precision": result.precision,
        "final_loss": result.history[-1]["loss"],
        **scores(p, result.encoder, train, test),
    }


def folders_at(data: Path, sides: set[int]) -> dict:
    return {
        side: tuple(load_image_folder(data / split, image_size=side) for split in ("train", "val"))
        for side in sides
    }


def table(rows: list[dict]) -> str:
    """Mean over seeds per (budget, setting), shortest budget first, then best first."""
    by: dict[tuple[float, str], list[dict]] = {}
    for row in rows:
        by.setdefault((row["budget_s"], row["setting"]), []).append(row)
    lines = [
        "| budget s | setting | seeds | epochs | pretrain s | linear probe | kNN |",
        "|" + " --- |" * 7,
    ]
    ranked = sorted(
        by.items(), key=lambda kv: (kv[0][0], -statistics.mean(r["linear_probe"] for r in kv[1]))
    )
    for (budget, name), rs in ranked:
        probe = [r["linear_probe"] for r in rs]
        spread = f" ± {statistics.stdev(probe):.3f}" if len(probe) > 1 else ""
        lines.append(
            f"| {budget:.0f} | {name} | {len(rs)} | {'/'.join(str(r['epochs']) for r in rs)} | "
            f"{statistics.mean(r['pretrain_seconds'] for r in rs):.0f} | "
            f"{statistics.mean(probe):.3f}{spread} | "
            f"{statistics.mean(r['knn'] for r in rs):.3f} |"
        )
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    if args.show:
        print(table([json.loads(line) for line in args.out.read_text().splitlines()]))
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    device = select_device("auto").type
    train_folder = survey(args.data / "train")
    base, _ = draft(
        train_folder, survey(args.data / "val"), device, 32, dataset_name(args.data / "train")
    )
    params = {
        (name, seed): setting_params(base, name, seed)
        for name in args.settings
        for seed in args.seeds
    }
    folders = folders_at(args.data, {p.data.image_size for p in params.values()})
    rows = []
    for (name, seed), p in params.items():
        logging.info("setting %s, seed %d: %s", name, seed, changes(name) or "init's draft")
        row = {"setting": name, "seed": seed, "changes": changes(name), "budget_s": args.seconds}
        row.update(cell(p, args.seconds, folders))
        save(args.out, row)
        rows.append(row)
    print(table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

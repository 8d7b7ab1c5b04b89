"""Evaluation of the pretrained encoder on a prepared dataset (linear probe, kNN, fine-tuning),
with baselines and significance tests.

Used by both the evaluate stage (the pretraining dataset) and transfer (downstream datasets),
once per pretraining-seed replica: each writes the replica's details.json (every run, the
within-replica tests, provenance); the summarize stage pools the replicas.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.checkpoint import load_encoder
from simclr.config import Params, to_dict
from simclr.data.prepared import Prepared, load_prepared
from simclr.device import autocast_dtype, seed_everything, select_device
from simclr.errors import PipelineError
from simclr.evaluate import PROTOCOLS, Protocols, evaluate_representations
from simclr.features import extract_features
from simclr.io import write_json
from simclr.models import build_model
from simclr.provenance import provenance
from tasks.arguments import model_kwargs, protocols_kwargs
from tasks.artifacts import artifact_key, publish
from tasks.figures.evaluation import confusion, embedding
from tasks.labels import fraction_label, method_label
from tasks.paths import CONFUSION, DETAILS, EMBEDDING, REPORTS, checkpoint, prepared_root
from tasks.replicas import first_label_seed, pretraining_seed
from tasks.retries import TRANSIENT


def load_checked(dataset: str, checkpoint: Path, device) -> tuple[Prepared, torch.nn.Module, dict]:
    """The prepared dataset and the pretrained encoder, checked to fit each other."""
    data = load_prepared(prepared_root(dataset))
    if len(data.class_names) < 2:  # every method would score 1.0, every p-value be 1
        raise PipelineError(
            f"{prepared_root(dataset)}: {len(data.class_names)} class; evaluation needs at least "
            "2 classes (the validate stage checks this too)"
        )
    encoder, meta = load_encoder(checkpoint, device)
    if data.train.images.shape[-1] != meta["in_channels"]:
        raise PipelineError(
            f"{prepared_root(dataset)}: images have {data.train.images.shape[-1]} channels but "
            f"the checkpoint expects {meta['in_channels']}; prepare both with the same channels"
        )
    return data, encoder, meta


def random_baseline(params: Params, seed: int, meta: dict, device) -> torch.nn.Module:
    """The same architecture with random weights, evaluated as frozen as SimCLR's. With the
    replica's pretraining seed these are the weights its pretraining started from."""
    torch.manual_seed(seed)
    encoder, _ = build_model(meta["in_channels"], meta["image_size"], **model_kwargs(params.model))
    return encoder.to(device)


def finetune_words(params: Params, result: dict) -> str:
    """Each fraction's fine-tuning steps and what bound them, in words; where max_steps bound,
    how many of the passes asked for it allowed, and the key to raise."""
    runs = {f: cell["runs"][0] for f, cell in result.get("finetune", {}).get("simclr", {}).items()}
    if not runs:
        return ""
    ft = params.evaluate.finetune
    cells = []
    for fraction, r in runs.items():
        words = (
            f"{fraction_label(fraction)}: {r['steps']} steps of {r['batch']} "
            f"({r['passes']:.2g} passes)"
        )
        if r["bound"] == "max_steps":
            words += (
                f", cut from the {ft.epochs} passes asked by evaluate.finetune.max_steps = "
                f"{ft.max_steps}: raise it for a full fine-tuning"
            )
        elif r["bound"] == "min_steps":
            words += f", evaluate.finetune.min_steps = {ft.min_steps}"
        cells.append(words)
    return "; " + "; ".join(cells)


def protocol_notes(params: Params, data: Prepared, result: dict | None = None) -> dict:
    """How each protocol ran, in words, with the evaluate params and the split sizes (and,
    given the evaluation's `result`, the fine-tuning budget each fraction got)."""
    cfg = params.evaluate
    return {
        "linear": "standardized frozen h + multinomial logistic regression (L-BFGS), L2 "
        f"strength from C in {list(cfg.C)} chosen on {cfg.val_fraction:.0%} of each labelled "
        "subset, then refitted on all of it",
        "knn": f"weighted cosine kNN on frozen h, k={cfg.knn_k}, T={cfg.knn_temperature}",
        "finetune": "encoder + linear head, random resized crop and flip only, Nesterov SGD, "
        "cosine decay" + finetune_words(params, result or {}),
        "significance": "within this replica, SimCLR vs baseline: paired t-test over the label "
        "subsets, or the exact McNemar test on the test predictions where there is one run; "
        "reports/summary.json holds the tests over replicas",
        "evaluate": to_dict(cfg),
        "train_images": int(len(data.train.labels)),
        "test_images": int(len(data.test.labels)),
    }


@task(name="evaluation", cache_policy=NONE, **TRANSIENT)
def evaluate_on(
    dataset: str, replica: int, out: Path, params: Params, figures: bool = False
) -> dict:
    """Evaluate replica `replica`'s encoder on `dataset`: write <out>/details.json and return
    it. With `figures`, also the t-SNE of the test features and the linear probe's confusion
    matrix, in `out`."""
    device = select_device(params.pretrain.device)
    seed = pretraining_seed(params, replica)
    seed_everything(seed, device)
    data, encoder, meta = load_checked(dataset, checkpoint(replica), device)
    first_subset = first_label_seed(params, replica)
    result = evaluate_representations(
        data,
        {"simclr": encoder, "random_init": random_baseline(params, seed, meta, device)},
        Protocols(**protocols_kwargs(params.evaluate)),
        first_subset,
        device,
        autocast_dtype(params.pretrain.precision, device),
    )
    predictions = result.pop("predictions")
    if figures:
        write_figures(encoder, data, predictions, params, seed, device, out)
    details = {
        "dataset": dataset,
        "replica": replica,
        "seeds": {"pretraining": seed, "first_label_subset": first_subset},
        **result,
        "protocol": protocol_notes(params, data, result),
        "checkpoint": {"dataset": meta.get("dataset")},
        "provenance": provenance(str(device)),
    }
    write_json(out / DETAILS, details)
    get_run_logger().info("wrote %s", out / DETAILS)
    publish_metrics(artifact_key(*out.relative_to(REPORTS).parts), dataset, replica, result)
    return details


EMBEDDING_POINTS = 1000  # t-SNE of a seeded subsample: 2,000 points took 8 s on 2 cores, 1,000 4 s


def write_figures(encoder, data, predictions: dict, params: Params, seed: int, device, out):
    """The embedding figure (t-SNE of SimCLR's h on the test split, by class) and the confusion
    figure (the SimCLR linear probe at the largest label fraction)."""
    from sklearn.manifold import TSNE

    labels = data.test.labels
    idx = np.arange(len(labels))
    if len(idx) > EMBEDDING_POINTS:
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.choice(idx, EMBEDDING_POINTS, replace=False))
    feats = extract_features(encoder, data.test.images[idx], device, params.evaluate.batch_size)
    perplexity = min(30.0, (len(idx) - 1) / 3)
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)
    names = list(data.class_names)
    dataset = params.pretrain.dataset
    embedding(
        points,
        labels[idx],
        names,
        f"t-SNE of SimCLR h, {dataset} test split",
        out / EMBEDDING,
    )
    fraction = max(predictions["linear"]["simclr"], key=float)
    confusion(
        labels,
        predictions["linear"]["simclr"][fraction],
        names,
        f"SimCLR linear probe, {fraction_label(fraction)} labels, {dataset} test split",
        out / CONFUSION,
    )


def publish_metrics(key: str, dataset: str, replica: int, metrics: dict) -> None:
    """A table of every (protocol, method, fraction) cell with SimCLR's p-value against each
    baseline, and a markdown headline of SimCLR vs the best baseline at each fraction."""
    significance = metrics["significance"]
    rows, headline = [], []
    for protocol in PROTOCOLS:
        for method, by_fraction in metrics.get(protocol, {}).items():
            for fraction, r in by_fraction.items():
                test = significance.get(protocol, {}).get(method, {}).get(fraction)
                rows.append(
                    {
                        "protocol": protocol,
                        "method": method,
                        "labels": fraction,
                        **{k: round(r[k], 4) for k in ("mean", "std", "mean_per_class")},
                        "n": r["n"],
                        "p_simclr_vs_this": test["p"] if test else None,
                    }
                )
    linear = metrics["linear"]
    for fraction, r in linear["simclr"].items():
        base = max((m for m in linear if m != "simclr"), key=lambda m: linear[m][fraction]["mean"])
        b = linear[base][fraction]
        p = significance["linear"][base][fraction]["p"]
        headline.append(
            f"| {fraction_label(fraction)} | {r['mean']:.3f} ± {r['std']:.3f} | "
            f"{method_label(base)} {b['mean']:.3f} ± {b['std']:.3f} | {p:.2g} |"
        )
    summary = f"{dataset}, replica {replica}: linear probe " + ", ".join(
        f"{fraction_label(f)} {r['mean']:.3f}" for f, r in linear["simclr"].items()
    )
    markdown = "\n".join(
        [
            f"# Evaluation on `{dataset}`, replica {replica}",
            "",
            "Linear probe, SimCLR vs the best baseline within this replica (p: paired test over "
            "its label subsets, see details.json; the tests over replicas are the summarize "
            "stage's):",
            "",
            "| labels | SimCLR | best baseline | p |",
            "|---|---|---|---|",
            *headline,
        ]
    )
    publish(key, summary, markdown, rows)

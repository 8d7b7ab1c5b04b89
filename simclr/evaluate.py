"""The evaluation protocols of the paper at several label fractions, with the baselines that
give them meaning and paired significance tests:

- linear: L2-regularised logistic regression on frozen h (strength chosen on a validation split)
- knn: weighted-cosine kNN on frozen h
- finetune: encoder + linear head trained on the labelled subset

Methods: the pretrained encoder (simclr), the same architecture with random weights
(random_init: frozen for linear and kNN, trained from scratch when fine-tuned) and the raw
pixels (linear and kNN). Run i of every method at a fraction uses the same label subset, so
comparisons are paired.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch

from simclr import defaults as D
from simclr.data.prepared import Prepared, read_rows
from simclr.data.sampling import sample_per_class
from simclr.device import explain_oom
from simclr.errors import PipelineError
from simclr.features import extract_features, raw_pixels
from simclr.finetune import finetune, finetune_budget, predict
from simclr.models import Encoder
from simclr.probe import accuracies, knn_predict, logistic_probes
from simclr.significance import compare

log = logging.getLogger("simclr.evaluate")

PRETRAINED = "simclr"
BASELINES = ("random_init", "raw_pixels")
PROTOCOLS = ("linear", "knn", "finetune")
SUMMARY_KEYS = ("mean", "std", "n", "mean_per_class")  # what metrics.json keeps of each cell
IN_MEMORY = ("correct", "predictions")  # per-run arrays, not summarised


def fraction_key(fraction: float) -> str:
    """The metrics key of a label fraction: 0.01 -> "0.01", 1 -> "1.0"."""
    return str(float(fraction))


@dataclass(frozen=True)
class Protocols:
    """How the encoders are evaluated, as plain values: params.yaml's `evaluate` keys of the
    same names; `finetune` holds `simclr.finetune.finetune`'s keyword arguments (its
    `epochs` 0: no fine-tuning), `finetune_seeds` how many label subsets of each fraction are
    fine-tuned. The defaults are the paper's protocols (simclr/defaults.py)."""

    fractions: tuple[float, ...] = D.FRACTIONS
    seeds: int = D.EVAL_SEEDS
    val_fraction: float = D.VAL_FRACTION
    C: tuple[float, ...] = D.PROBE_C
    max_iter: int = D.PROBE_MAX_ITER
    batch_size: int = D.EVAL_BATCH_SIZE
    knn_k: int = D.EVAL_KNN_K
    knn_temperature: float = D.EVAL_KNN_TEMPERATURE
    finetune: Mapping[str, object] = field(default_factory=dict)
    finetune_seeds: int = D.FINETUNE_SEEDS

    @property
    def finetunes(self) -> bool:
        return self.finetune.get("epochs", D.FINETUNE_EPOCHS) > 0


def label_subsets(
    labels: np.ndarray,
    seed: int,
    *,
    fractions: tuple[float, ...] = D.FRACTIONS,
    seeds: int = D.EVAL_SEEDS,
) -> dict[str, list]:
    """{fraction key: [(seed, indices)]}: `seeds` class-balanced subsets (`sample_per_class`)
    below 1.0, the whole split at 1.0 (one subset, so n = 1 there)."""
    out = {}
    for fraction in fractions:
        seeds_here = [seed] if fraction >= 1.0 else [seed + i for i in range(seeds)]
        out[fraction_key(fraction)] = [
            (s, sample_per_class(labels, fraction, s)) for s in seeds_here
        ]
    return out


def _run(seed: int, predictions: np.ndarray, test_y: np.ndarray, **extra) -> dict:
    accuracy, per_class = accuracies(predictions, test_y)
    return {
        "seed": seed,
        "accuracy": accuracy,
        "mean_per_class": per_class,
        **extra,
        "correct": predictions == test_y,  # for the McNemar test; not written out
        "predictions": predictions,  # for the confusion matrix; not written out
    }


def summarise(runs: list[dict], train_images: int) -> dict:
    """{mean, std, n, mean_per_class, train_images, runs}; std is the sample std over seeds
    (ddof 1), 0 for a single run."""
    acc = [r["accuracy"] for r in runs]
    return {
        "mean": float(np.mean(acc)),
        "std": float(np.std(acc, ddof=1)) if len(acc) > 1 else 0.0,
        "n": len(acc),
        "mean_per_class": float(np.mean([r["mean_per_class"] for r in runs])),
        "train_images": train_images,
        "runs": [{k: v for k, v in r.items() if k not in IN_MEMORY} for r in runs],
    }


def evaluate_representations(
    data: Prepared,
    encoders: dict[str, Encoder],
    cfg: Protocols,
    seed: int,
    device: torch.device,
    amp_dtype: torch.dtype | None = None,
) -> dict:
    """Every protocol x method x fraction x seed, and the significance of SimCLR vs each
    baseline. Returns {"linear"|"knn"|"finetune": {method: {fraction: summary}},
    "significance": {protocol: {baseline: {fraction: {diff, p, test}}}}, "seconds": {protocol: s},
    "predictions": {protocol: {method: {fraction: test predictions of the first run}}}} (arrays,
    for figures; not JSON).
    `encoders` maps a method name to a frozen encoder; none of them is modified."""
    _check_neighbours(cfg.knn_k, len(data.train.labels))
    with explain_oom("evaluation", cfg.batch_size):
        return _evaluate(data, encoders, cfg, seed, device, amp_dtype)


def _check_neighbours(k: int, images: int) -> None:
    """A k beyond the whole labelled training split is more than the data allows: an error,
    not a silent clip. Below that, a small label fraction's subset may hold fewer images than
    k (1% of each digit class is a few images, fewer than the default k = 20): all of them vote, a
    cap the default pipeline's results rely on, so it stays (simclr.probe.knn_predict)."""
    if k > images:
        raise PipelineError(
            f"knn_k = {k} is more than the {images} labelled training images of the dataset; "
            f"allowed: at most {images}",
            about="evaluate.knn_k",
        )


def _evaluate(data, encoders, cfg, seed, device, amp_dtype) -> dict:
    subsets = label_subsets(data.train.labels, seed, fractions=cfg.fractions, seeds=cfg.seeds)
    runs: dict[str, dict[str, dict[str, list]]] = {f: {} for f in PROTOCOLS}
    seconds = {}
    start = time.perf_counter()
    for method, (train_x, test_x) in _features(data, encoders, cfg, device, amp_dtype).items():
        linear, knn = _frozen_runs(train_x, test_x, data, subsets, cfg, device)
        runs["linear"][method], runs["knn"][method] = linear, knn
    seconds["linear+knn"] = time.perf_counter() - start
    if cfg.finetunes:
        start = time.perf_counter()
        for method, encoder in encoders.items():
            tuned = _finetune_runs(encoder, data, subsets, cfg, device, amp_dtype)
            runs["finetune"][method] = tuned
        seconds["finetune"] = time.perf_counter() - start
    out: dict = _summaries(runs, subsets)
    out["significance"] = _significance(runs, subsets)
    out["seconds"] = seconds
    out["predictions"] = {  # the first run's, for the figures
        protocol: {
            method: {key: r[0]["predictions"] for key, r in by_fraction.items()}
            for method, by_fraction in by_method.items()
        }
        for protocol, by_method in runs.items()
        if by_method
    }
    return out


def _features(data: Prepared, encoders: dict, cfg, device, amp_dtype) -> dict[str, tuple]:
    """{method: (train features, test features)}: h of every encoder (at the training
    precision), then the raw pixels."""
    features = {
        name: tuple(
            extract_features(enc, split.images, device, cfg.batch_size, amp_dtype)
            for split in (data.train, data.test)
        )
        for name, enc in encoders.items()
    }
    features["raw_pixels"] = (raw_pixels(data.train.images), raw_pixels(data.test.images))
    return features


def _frozen_runs(train_x, test_x, data: Prepared, subsets: dict, cfg, device) -> tuple[dict, dict]:
    """({fraction key: [run]} of the linear probe, the same of kNN) on one method's features;
    the probes of one fraction's label subsets are fitted together on `device`."""
    train_y, test_y = data.train.labels, data.test.labels
    linear: dict[str, list] = {}
    knn: dict[str, list] = {}
    for key, subs in subsets.items():
        fits = logistic_probes(
            train_x, train_y, subs, test_x, cfg.C, cfg.val_fraction, cfg.max_iter, device
        )
        for (s, idx), fit in zip(subs, fits, strict=True):
            linear.setdefault(key, []).append(
                _run(s, fit.predictions, test_y, C=fit.C, C_validated=fit.validated)
            )
            pred = knn_predict(train_x[idx], train_y[idx], test_x, cfg.knn_k, cfg.knn_temperature)
            knn.setdefault(key, []).append(_run(s, pred, test_y))
    return linear, knn


def _finetune_runs(encoder, data: Prepared, subsets: dict, cfg, device, amp_dtype) -> dict:
    """{fraction key: [run]} of fine-tuning a copy of `encoder` on the first `finetune_seeds`
    label subsets of each fraction (each run costs as much as a short pretraining)."""
    tuned: dict[str, list] = {}
    for key, subs in subsets.items():
        for s, idx in subs[: cfg.finetune_seeds]:
            model = finetune(
                encoder,
                read_rows(data.train.images, idx),
                data.train.labels[idx],
                len(data.class_names),
                s,
                device,
                amp_dtype,
                **cfg.finetune,
            )
            pred = predict(model, data.test.images, device, cfg.batch_size, amp_dtype)
            budget = finetune_budget(len(idx), **_budget_kwargs(cfg.finetune))
            tuned.setdefault(key, []).append(_run(s, pred, data.test.labels, **budget))
    return tuned


def _budget_kwargs(finetune_kwargs: Mapping[str, object]) -> dict:
    """The fine-tuning keywords that set its number of steps."""
    names = ("epochs", "min_steps", "max_steps", "batch_size")
    return {k: v for k, v in finetune_kwargs.items() if k in names}


def _summaries(runs: dict, subsets: dict) -> dict:
    """{protocol: {method: {fraction key: summary}}} for every protocol that ran, logged."""
    out = {}
    for protocol, by_method in runs.items():
        if not by_method:
            continue
        out[protocol] = {
            method: {key: summarise(r, len(subsets[key][0][1])) for key, r in by_fraction.items()}
            for method, by_fraction in by_method.items()
        }
        for method, by_fraction in out[protocol].items():
            summary = ", ".join(f"{k}: {v['mean']:.4f}" for k, v in by_fraction.items())
            log.info("%s %s: %s", protocol, method, summary)
    return out


def _significance(runs: dict, subsets: dict) -> dict:
    """{protocol: {baseline: {fraction key: {diff, p, test}}}}: SimCLR against each baseline."""
    return {
        protocol: {
            baseline: {
                key: compare(by_method[PRETRAINED][key], by_method[baseline][key])
                for key in subsets
            }
            for baseline in BASELINES
            if baseline in by_method
        }
        for protocol, by_method in runs.items()
        if PRETRAINED in by_method
    }

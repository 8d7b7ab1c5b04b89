"""A complete set of stage outputs for the report, made by the real code on tiny data, in the
working directory (the stages' relative paths): two pretraining replicas, each with its
pretraining curves and its evaluate and transfer details, pooled by the real summarize stage."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import torch
from helpers import tiny_prepared
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.report import report_flow
from simclr.config import EvaluateConfig, FinetuneConfig, Params, from_dict
from simclr.data.prepared import save_prepared
from simclr.evaluate import Protocols, evaluate_representations
from simclr.io import write_json
from simclr.models import build_model
from tasks.arguments import protocols_kwargs
from tasks.figures.evaluation import confusion, embedding
from tasks.figures.views import view_pairs_figure
from tasks.paths import CONFUSION, CURVES_DIR, EMBEDDING, VIEWS
from tasks.summary import summarize_replicas

PARAMS = {
    "replicas": [0, 1],
    "datasets": {"digits": {"source": "digits"}, "faces": {"source": "faces"}},
    "model": {"widths": [8, 16], "blocks": [1, 1]},
    "pretrain": {"epochs": 3, "warmup_epochs": 1},
    "evaluate": {
        "fractions": [0.2, 1.0],
        "seeds": 2,
        "C": [0.1, 1.0],
        "knn_k": 5,
        "finetune": {"epochs": 1, "min_steps": 2, "max_steps": 3},
    },
    "transfer": {"datasets": ["faces"]},
}


def fixture_params() -> Params:
    return from_dict(Params, PARAMS, "")


def build_reports(root: Path) -> Params:
    """Prepared data, validation results, every replica's pretraining metrics and curves and
    evaluate and transfer details, the stages' figures, and the summarize stage's outputs under
    `root` (which must be the working directory)."""
    params = fixture_params()
    cfg = EvaluateConfig(
        fractions=(0.2, 1.0), seeds=2, C=(0.1, 1.0), knn_k=5,
        finetune=FinetuneConfig(epochs=1, min_steps=2, max_steps=3),
    )  # fmt: skip
    for name, classes in (("digits", 4), ("faces", 2)):
        data = tiny_prepared(40, 20, classes, seed=classes)
        save_prepared(data, root / "data" / "prepared" / name)
        write_json(
            root / "reports" / "validation" / "results" / f"{name}.json",
            {"dataset": name, "success": True, "expectations": [{"check": "x", "success": True}]},
        )
        for replica in params.replicas:
            _replica_details(root, name, data, replica, cfg, params)
    for replica in params.replicas:
        _pretrain_outputs(root / "reports" / "pretrain" / str(replica), replica)
    summarize_replicas(params)
    return params


def _replica_details(root: Path, name: str, data, replica: int, cfg, params: Params) -> None:
    """One replica's details.json on one dataset (a random encoder of the replica's seed
    standing in for a pretrained one) and, on the pretraining set, its figures."""
    torch.manual_seed(replica)
    encoder, _ = build_model(1, 8, widths=(8, 16), blocks=(1, 1))
    result = evaluate_representations(
        data,
        {"simclr": encoder, "random_init": encoder},
        Protocols(**protocols_kwargs(cfg)),
        2 * replica,
        torch.device("cpu"),
    )
    predictions = result.pop("predictions")
    details = {
        **result,
        "dataset": name,
        "replica": replica,
        "protocol": {"train_images": 40, "test_images": 20, "linear": "probe"},
        "checkpoint": {"dataset": "digits"},
    }
    out = root / "reports" / ("evaluate" if name == "digits" else f"transfer/{name}") / str(replica)
    write_json(out / "details.json", details)
    if name == "digits":
        points = np.random.default_rng(replica).normal(size=(20, 2))
        names = list(data.class_names)
        embedding(points, data.test.labels, names, "t", out / EMBEDDING)
        pred = predictions["linear"]["simclr"]["1.0"]
        confusion(data.test.labels, pred, names, "c", out / CONFUSION)
        views = root / "reports" / "pretrain" / str(replica) / VIEWS
        view_pairs_figure(data.train.images, params.pretrain.augment.model_dump(), replica, views)


def _pretrain_outputs(folder: Path, replica: int) -> None:
    """A replica's DVCLive curves and metrics.json and its run.json."""
    curves = folder / CURVES_DIR
    curves.mkdir(parents=True, exist_ok=True)
    for name, values in {
        "loss": [5.0, 4.5, 4.2 + 0.1 * replica],
        "lr": [0.1, 0.05, 0.0],
        "knn_accuracy": [0.5, 0.6, 0.7 - 0.05 * replica],
        "images_per_s": [900, 1000, 1000],
    }.items():
        rows = "".join(f"{i}\t{v}\n" for i, v in enumerate(values))
        (curves / f"{name}.tsv").write_text(f"step\t{name}\n{rows}")
    (folder / "metrics.json").write_text(
        json.dumps({"loss": 4.2 + 0.1 * replica, "wall_seconds": 3.0, "knn_accuracy": 0.7})
    )
    write_json(
        folder / "run.json",
        {"wall_seconds": 3.0, "provenance": {"git_commit": "abc", "device": "cpu"}},
    )


def render_reports(path: Path, prefect_api: str) -> Path:
    """The real report task, run on the fixture outputs in `path`."""
    cwd = os.getcwd()
    os.chdir(path)
    try:
        params = build_reports(path)

        with temporary_settings({PREFECT_API_URL: prefect_api}):
            report_flow(params=params)  # the report stage's flow, as dvc runs it
    finally:
        os.chdir(cwd)
    return path

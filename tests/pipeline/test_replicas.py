"""The budget of metric columns: the real dvc.yaml and params.yaml, the summarize code's metrics
for outputs of the default pipeline's shape, and `dvc exp show` in a real Git + DVC repository."""

from __future__ import annotations

import csv
import io
import json
import shutil

import numpy as np
from helpers import ROOT, fake_details, init_repo, repo_env, runner

from simclr.config import Params, load_params
from simclr.evaluate import BASELINES, PRETRAINED, PROTOCOLS, fraction_key
from simclr.io import write_json
from tasks.labels import fraction_label
from tasks.paths import DETAILS, METRICS, evaluate_dir, pretrain_dir, transfer_dir
from tasks.summary import summarize_replicas


def default_shaped_outputs(params: Params) -> None:
    """Every replica's outputs in the working directory, shaped as the default params make them
    (datasets, protocols, methods, fractions, subsets), with random accuracies."""
    rng = np.random.default_rng(0)
    methods = {"linear": [PRETRAINED, *BASELINES], "knn": [PRETRAINED, *BASELINES]}
    methods["finetune"] = [PRETRAINED, "random_init"]
    for r in params.replicas:
        write_json(pretrain_dir(r) / METRICS, {"loss": 4.5, "knn_accuracy": 0.9, "step": 49})
        folders = [evaluate_dir(r)] + [transfer_dir(d, r) for d in params.transfer.datasets]
        for folder in folders:
            accuracies = {
                protocol: {
                    m: {
                        fraction_key(f): list(
                            rng.uniform(0.5, 1.0, 1 if f >= 1 else params.evaluate.seeds)
                        )
                        for f in params.evaluate.fractions
                    }
                    for m in ms
                }
                for protocol, ms in methods.items()
            }
            write_json(folder / DETAILS, fake_details(accuracies))


def test_the_default_pipeline_lists_at_most_60_metric_columns(tmp_path, monkeypatch):
    """The real dvc.yaml and params.yaml, the metrics the real summarize code writes for outputs
    of the default pipeline's shape: `dvc exp show --csv` has at most 60 metric columns, all of
    reports/metrics.json (the one metrics file: per-replica, std, n and p live elsewhere)."""
    params = load_params(ROOT / "params.yaml")
    assert set(PROTOCOLS) == {"linear", "knn", "finetune"} and len(params.replicas) >= 3
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, tmp_path)
    monkeypatch.chdir(tmp_path)
    default_shaped_outputs(params)
    summarize_replicas(params)
    run = runner(tmp_path, repo_env())
    init_repo(run)
    header = next(csv.reader(io.StringIO(run("dvc", "exp", "show", "--no-pager", "--csv").stdout)))
    metrics = json.loads(run("dvc", "metrics", "show", "--json").stdout)
    [files] = [rev["data"] for rev in metrics.values()]
    assert list(files) == ["reports/metrics.json"]  # the one metrics file
    leaves = [k for k in _leaves(files["reports/metrics.json"]["data"])]
    columns = [c for c in header if c in leaves]
    assert len(columns) == len(leaves) <= 60, len(leaves)
    datasets = [params.pretrain.dataset, *params.transfer.datasets]
    fractions = [fraction_label(f) for f in params.evaluate.fractions]
    expected = {f"pretrain.{k}" for k in ("loss", "knn_accuracy")}
    expected |= {f"{d}.{p}.{f}" for d in datasets for p in PROTOCOLS for f in fractions}
    expected |= {f"{d}.linear_gain.{f}" for d in datasets for f in fractions}
    assert set(columns) == expected  # each a mean someone compares: no std, n, p or test


def _leaves(tree: dict, prefix: str = ""):
    for k, v in tree.items():
        if isinstance(v, dict):
            yield from _leaves(v, f"{prefix}{k}.")
        else:
            yield f"{prefix}{k}"

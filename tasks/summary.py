"""The summarize stage: every pretraining-seed replica pooled into reports/summary.json
(accuracies as mean ± std over replicas x label subsets, SimCLR against each baseline tested
over replicas) and the headline numbers people compare across experiments,
reports/metrics.json: the one file dvc.yaml declares as metrics, so what `dvc exp show` lists."""

from __future__ import annotations

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.errors import PipelineError
from simclr.evaluate import BASELINES, PRETRAINED, PROTOCOLS
from simclr.io import read_json, write_json
from simclr.significance import over_replicas
from tasks.artifacts import artifact_key, publish
from tasks.labels import fraction_label
from tasks.paths import (
    DETAILS,
    HEADLINE_METRICS,
    METRICS,
    SUMMARY,
    evaluate_dir,
    pretrain_dir,
    transfer_dir,
)
from tasks.retries import TRANSIENT

PRETRAIN_HEADLINES = ("loss", "knn_accuracy")  # DVCLive's last values of each replica
GAIN = "linear_gain"  # SimCLR's linear probe minus the best baseline's, per fraction
ONE_REPLICA = "; one replica: the pretraining's own variation is not measured"


def read_replicas(params: Params) -> dict:
    """What every replica's stages wrote: {"pretrain": {r: DVCLive's metrics.json},
    "datasets": {dataset: {r: details.json}}}, the pretraining set first."""
    replicas = params.replicas
    where = {params.pretrain.dataset: evaluate_dir}
    where.update({d: lambda r, d=d: transfer_dir(d, r) for d in params.transfer.datasets})
    return {
        "pretrain": {r: read_json(pretrain_dir(r) / METRICS) for r in replicas},
        "datasets": {
            d: {r: read_json(folder(r) / DETAILS) for r in replicas} for d, folder in where.items()
        },
    }


def _spread(values) -> float:
    """Sample std (ddof 1); 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def runs_table(by_replica: dict[int, dict], protocol: str, method: str, fraction: str):
    """The R x S accuracies of one cell (row r: replica r's runs on its label subsets)."""
    return np.array(
        [
            [run["accuracy"] for run in d[protocol][method][fraction]["runs"]]
            for d in by_replica.values()
        ]
    )


def pooled_cell(by_replica: dict[int, dict], protocol: str, method: str, fraction: str) -> dict:
    """One (protocol, method, fraction) over every replica's runs: mean and std over all R x S
    runs, the std of the replica means (the pretraining's share), per-class accuracy, and each
    replica's mean."""
    acc = runs_table(by_replica, protocol, method, fraction)
    per_class = [
        run["mean_per_class"]
        for d in by_replica.values()
        for run in d[protocol][method][fraction]["runs"]
    ]
    means = acc.mean(axis=1)
    return {
        "mean": float(acc.mean()),
        "std": _spread(acc.ravel()),
        "n": int(acc.size),
        "replicas": int(acc.shape[0]),
        "subsets": int(acc.shape[1]),
        "replica_std": _spread(means),
        "mean_per_class": float(np.mean(per_class)),
        "by_replica": {str(r): float(m) for r, m in zip(by_replica, means, strict=True)},
    }


def _significance(by_replica: dict[int, dict], protocol: str, fraction: str, baseline: str):
    """SimCLR vs `baseline`: the test over replicas; with one replica, that replica's own test
    (over its label subsets, or McNemar), said to leave the pretraining out."""
    if len(by_replica) >= 2:
        a = runs_table(by_replica, protocol, PRETRAINED, fraction)
        return over_replicas(a, runs_table(by_replica, protocol, baseline, fraction))
    (only,) = by_replica.values()
    within = only["significance"][protocol][baseline][fraction]
    return {**within, "ci": None, "test": within["test"] + ONE_REPLICA}


def dataset_summary(by_replica: dict[int, dict], role: str) -> dict:
    """One dataset over every replica: pooled cells, the tests over replicas, the protocol."""
    first = next(iter(by_replica.values()))
    out = {
        "role": role,
        "train_images": first["protocol"]["train_images"],
        "test_images": first["protocol"]["test_images"],
        "protocol": first["protocol"],
        "seconds": {
            k: float(sum(d["seconds"].get(k, 0.0) for d in by_replica.values()))
            for k in first["seconds"]
        },
        "significance": {},
    }
    for protocol in PROTOCOLS:
        if protocol not in first:
            continue
        cells = first[protocol]
        out[protocol] = {
            m: {f: pooled_cell(by_replica, protocol, m, f) for f in cells[m]} for m in cells
        }
        out["significance"][protocol] = {
            b: {f: _significance(by_replica, protocol, f, b) for f in cells[PRETRAINED]}
            for b in BASELINES
            if b in cells
        }
    return out


def _headline(by_replica: dict[str, float]) -> dict:
    values = list(by_replica.values())
    return {
        "mean": float(np.mean(values)),
        "std": _spread(values),
        "n": len(values),
        "by_replica": by_replica,
    }


def headlines(pretrain: dict[int, dict], datasets: dict[str, dict]) -> dict[tuple, dict]:
    """(section, ..., name) -> the number over replicas: the pretraining's final loss and kNN
    monitor, SimCLR at each protocol and fraction on every dataset, and the linear probe's gain
    over the best baseline."""
    out = {}
    for key in PRETRAIN_HEADLINES:
        if all(key in m for m in pretrain.values()):
            out[("pretrain", key)] = _headline({str(r): m[key] for r, m in pretrain.items()})
    for name, summary in datasets.items():
        if name == "pretrain":
            raise PipelineError(
                "params.yaml: datasets.pretrain: the name clashes with the pretraining section "
                "of reports/metrics.json; rename the dataset"
            )
        for protocol in PROTOCOLS:
            for fraction, cell in summary.get(protocol, {}).get(PRETRAINED, {}).items():
                key = (name, protocol, fraction_label(fraction))
                out[key] = _headline(cell["by_replica"])
        linear = summary["linear"]
        for fraction, cell in linear[PRETRAINED].items():
            best = max(
                (b for b in BASELINES if b in linear), key=lambda b: linear[b][fraction]["mean"]
            )
            base = linear[best][fraction]["by_replica"]
            gain = {r: v - base[r] for r, v in cell["by_replica"].items()}
            out[(name, GAIN, fraction_label(fraction))] = {**_headline(gain), "baseline": best}
    return out


def metrics_tree(found: dict[tuple, dict]) -> dict:
    """reports/metrics.json: each headline's mean, nested by its key."""
    tree: dict = {}
    for key, value in found.items():
        node = tree
        for part in key[:-1]:
            node = node.setdefault(part, {})
        node[key[-1]] = value["mean"]
    return tree


def summarize_replicas(params: Params) -> dict:
    """Read every replica's outputs and write SUMMARY and HEADLINE_METRICS; the summary."""
    found = read_replicas(params)
    datasets = {
        name: dataset_summary(by_replica, "pretraining set" if i == 0 else "transfer")
        for i, (name, by_replica) in enumerate(found["datasets"].items())
    }
    pretrain = found["pretrain"]
    heads = headlines(pretrain, datasets)
    summary = {
        "replicas": list(params.replicas),
        "pretrain": {
            k: _headline({str(r): m[k] for r, m in pretrain.items()})
            for k in ("loss", "knn_accuracy", "wall_seconds")
            if all(k in m for m in pretrain.values())
        },
        "datasets": datasets,
        "headline": {".".join(k): v for k, v in heads.items()},
    }
    write_json(SUMMARY, summary)
    write_json(HEADLINE_METRICS, metrics_tree(heads))
    return summary


@task(name="summarize-replicas", cache_policy=NONE, **TRANSIENT)
def summarize(params: Params) -> dict:
    summary = summarize_replicas(params)
    get_run_logger().info("wrote %s and %s", SUMMARY, HEADLINE_METRICS)
    rows = [
        {
            "metric": k,
            "mean": round(v["mean"], 4),
            "std over replicas": round(v["std"], 4),
            "n": v["n"],
        }
        for k, v in summary["headline"].items()
    ]
    n = len(params.replicas)
    markdown = "\n".join(
        [
            f"# Summary over {n} pretraining replica{'s' if n > 1 else ''}",
            "",
            "| metric | mean ± std over replicas |",
            "|---|---|",
            *(f"| {r['metric']} | {r['mean']:.4f} ± {r['std over replicas']:.4f} |" for r in rows),
        ]
    )
    publish(
        artifact_key("summary"), f"{len(rows)} headline metrics over {n} replicas", markdown, rows
    )
    return summary

"""Everything the report shows, read from the files the report stage declares in dvc.yaml
(its deps): nothing else is read, so a report is a function of those files and params.yaml."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simclr.config import Params
from simclr.data.prepared import Prepared, load_prepared
from simclr.io import read_json
from tasks.paths import (
    CONFUSION,
    CURVES_DIR,
    EMBEDDING,
    RUN,
    SUMMARY,
    VIEWS,
    evaluate_dir,
    prepared_root,
    pretrain_dir,
    validation_result,
)

Curves = dict[str, tuple[np.ndarray, np.ndarray]]  # DVCLive metric -> (steps, values)


@dataclass(frozen=True)
class ReportInputs:
    params: Params
    summary: dict  # the summarize stage's summary.json: every replica pooled
    runs: dict[int, dict]  # replica -> how its pretraining ran: timings, provenance (run.json)
    curves: dict[int, Curves]  # replica -> its DVCLive curves
    validation: dict[str, dict]  # dataset -> its validation result
    datasets: dict[str, Prepared]  # every dataset's prepared arrays (memory-mapped)

    @property
    def evaluations(self) -> dict[str, dict]:
        """Dataset -> its summary over replicas: the pretraining set first, then the transfers."""
        return self.summary["datasets"]

    @property
    def first(self) -> int:
        """The replica whose figures the report shows (the views, t-SNE and confusion matrix)."""
        return self.params.replicas[0]


def figure_paths(replica: int) -> dict[str, Path]:
    """The figures the report shows of one replica: view pairs, t-SNE, confusion matrix."""
    return {
        "views": pretrain_dir(replica) / VIEWS,
        "embedding": evaluate_dir(replica) / EMBEDDING,
        "confusion": evaluate_dir(replica) / CONFUSION,
    }


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DVCLive .tsv (step, value) as two arrays."""
    with path.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    data = np.array([[float(r[0]), float(r[1])] for r in rows if len(r) >= 2]).reshape(-1, 2)
    return data[:, 0], data[:, 1]


def read_curves(replica: int) -> Curves:
    folder = pretrain_dir(replica) / CURVES_DIR
    return {p.stem: read_curve(p) for p in sorted(folder.glob("*.tsv"))}


def read_inputs(params: Params) -> ReportInputs:
    return ReportInputs(
        params=params,
        summary=read_json(SUMMARY),
        runs={r: read_json(pretrain_dir(r) / RUN) for r in params.replicas},
        curves={r: read_curves(r) for r in params.replicas},
        validation={n: read_json(validation_result(n)) for n in params.datasets},
        datasets={n: load_prepared(prepared_root(n)) for n in params.datasets},
    )

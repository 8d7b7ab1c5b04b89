"""Everything the report shows, read from the files the report stage declares in dvc.yaml
(its deps): nothing else is read, so a report is a function of those files and params.yaml."""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from simclr.config import Params
from simclr.data.prepared import Prepared, load_prepared
from simclr.errors import PipelineError
from tasks.paths import (
    DETAILS,
    EVALUATE,
    PRETRAIN_CURVES,
    PRETRAIN_METRICS,
    PRETRAIN_RUN,
    prepared_root,
    transfer_dir,
    validation_result,
)


@dataclass(frozen=True)
class ReportInputs:
    params: Params
    pretrain: dict  # the pretrain stage's metrics.json
    run: dict  # how pretraining ran: timings, provenance (the pretrain stage's run.json)
    curves: dict[str, tuple[np.ndarray, np.ndarray]]  # DVCLive metric -> (steps, values)
    evaluate: dict  # the evaluate stage's details.json (the pretraining set)
    transfers: dict[str, dict]  # dataset -> its transfer stage's details.json
    validation: dict[str, dict]  # dataset -> its validation result
    datasets: dict[str, Prepared]  # every dataset's prepared arrays (memory-mapped)

    @property
    def evaluations(self) -> dict[str, dict]:
        """Dataset -> details.json: the pretraining set first, then the transfers."""
        return {self.params.pretrain.dataset: self.evaluate, **self.transfers}


def read_json(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DVCLive .tsv (step, value) as two arrays."""
    with path.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    data = np.array([[float(r[0]), float(r[1])] for r in rows if len(r) >= 2]).reshape(-1, 2)
    return data[:, 0], data[:, 1]


def read_inputs(params: Params) -> ReportInputs:
    return ReportInputs(
        params=params,
        pretrain=read_json(PRETRAIN_METRICS),
        run=read_json(PRETRAIN_RUN),
        curves={p.stem: read_curve(p) for p in sorted(PRETRAIN_CURVES.glob("*.tsv"))},
        evaluate=read_json(EVALUATE / DETAILS),
        transfers={n: read_json(transfer_dir(n) / DETAILS) for n in params.transfer.datasets},
        validation={n: read_json(validation_result(n)) for n in params.datasets},
        datasets={n: load_prepared(prepared_root(n)) for n in params.datasets},
    )

"""Stage evaluate: linear probe on the pretraining set -> reports/evaluate/metrics.json."""

from pathlib import Path

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from tasks.evaluate import evaluate_on
from tasks.pretrain import CHECKPOINT


@flow(name="evaluate")
def evaluate_flow(params: Params) -> None:
    evaluate_on(params.pretrain.dataset, CHECKPOINT, Path("reports/evaluate"), params)


if __name__ == "__main__":
    run_stage(evaluate_flow)

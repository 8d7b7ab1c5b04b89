"""Stage evaluate: linear probe on the pretraining set -> reports/evaluate/metrics.json."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from tasks.evaluate import evaluate_on
from tasks.paths import CHECKPOINT, EVALUATE


@flow(name="evaluate")
def evaluate_flow(params: Params) -> None:
    evaluate_on(params.pretrain.dataset, CHECKPOINT, EVALUATE, params, figures=True)


if __name__ == "__main__":
    run_stage(evaluate_flow)

"""Stage transfer@<dataset>: linear probe on a downstream set -> reports/transfer/<dataset>/."""

from prefect import flow

from flows.cli import run_stage, stage_arg
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.evaluate import evaluate_on
from tasks.paths import CHECKPOINT, transfer_dir


@flow(name="transfer")
def transfer_flow(dataset: str, params: Params) -> None:
    if dataset not in params.transfer.datasets:
        raise PipelineError(
            f"params.yaml: transfer.datasets has no {dataset!r}; "
            f"allowed: {', '.join(params.transfer.datasets)}"
        )
    evaluate_on(dataset, CHECKPOINT, transfer_dir(dataset), params)


if __name__ == "__main__":
    run_stage(transfer_flow, stage_arg("python -m flows.transfer <dataset>"))

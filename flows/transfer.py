"""Stage transfer@<dataset>-<replica>: the replica's encoder on a downstream set ->
reports/transfer/<dataset>/<replica>/. `python -m flows.transfer <dataset> [replica]`
(default: the first of params.yaml's replicas)."""

from prefect import flow

from flows.cli import run_stage, stage_args
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.evaluate import evaluate_on
from tasks.paths import transfer_dir
from tasks.replicas import replica_arg


@flow(name="transfer")
def transfer_flow(dataset: str, replica: str | None = None, *, params: Params) -> None:
    if dataset not in params.transfer.datasets:
        raise PipelineError(
            f"params.yaml: transfer.datasets has no {dataset!r}; "
            f"allowed: {', '.join(params.transfer.datasets)}"
        )
    r = replica_arg(params, replica)
    evaluate_on(dataset, r, transfer_dir(dataset, r), params)


if __name__ == "__main__":
    run_stage(transfer_flow, *stage_args("python -m flows.transfer <dataset> [replica]", 1, 1))

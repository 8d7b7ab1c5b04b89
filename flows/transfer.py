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


def transfer_args(params: Params, dataset: str, replica: str | None = None) -> int:
    """The replica, once `dataset` is known to be one of transfer.datasets."""
    if dataset not in params.transfer.datasets:
        raise PipelineError(
            f"params.yaml: transfer.datasets has no {dataset!r}; "
            f"allowed: {', '.join(params.transfer.datasets)}"
        )
    return replica_arg(params, replica)


@flow(name="transfer")
def transfer_flow(dataset: str, replica: str | None = None, *, params: Params) -> None:
    r = transfer_args(params, dataset, replica)
    evaluate_on(dataset, r, transfer_dir(dataset, r), params)


if __name__ == "__main__":
    args = stage_args("python -m flows.transfer <dataset> [replica]", 1, 1)
    run_stage(transfer_flow, *args, check=transfer_args)

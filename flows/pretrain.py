"""Stage pretrain@<replica>: SimCLR on the pretraining set with the replica's seed ->
models/simclr-<replica>.pt, reports/pretrain/<replica>/. `python -m flows.pretrain [replica]`
(default: the first of params.yaml's replicas)."""

from prefect import flow

from flows.cli import run_stage, stage_args
from simclr.config import Params
from tasks.pretrain import pretrain_simclr
from tasks.replicas import replica_arg


@flow(name="pretrain")
def pretrain_flow(replica: str | None = None, *, params: Params) -> None:
    pretrain_simclr(params, replica_arg(params, replica))


if __name__ == "__main__":
    args = stage_args("python -m flows.pretrain [replica]", 0, 1)
    run_stage(pretrain_flow, *args, check=replica_arg)

"""Stage pretrain: SimCLR on the pretraining set -> models/simclr.pt, reports/pretrain/."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from tasks.pretrain import pretrain_simclr


@flow(name="pretrain")
def pretrain_flow(params: Params) -> None:
    pretrain_simclr(params)


if __name__ == "__main__":
    run_stage(pretrain_flow)

"""Stage evaluate@<replica>: the replica's encoder on the pretraining set (linear probe, kNN,
fine-tuning, baselines) -> reports/evaluate/<replica>/. `python -m flows.evaluate [replica]`
(default: the first of params.yaml's replicas)."""

from prefect import flow

from flows.cli import run_stage, stage_args
from simclr.config import Params
from tasks.evaluate import evaluate_on
from tasks.paths import evaluate_dir
from tasks.replicas import replica_arg


@flow(name="evaluate")
def evaluate_flow(replica: str | None = None, *, params: Params) -> None:
    r = replica_arg(params, replica)
    evaluate_on(params.pretrain.dataset, r, evaluate_dir(r), params, figures=True)


if __name__ == "__main__":
    args = stage_args("python -m flows.evaluate [replica]", 0, 1)
    run_stage(evaluate_flow, *args, check=replica_arg)

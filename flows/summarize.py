"""Stage summarize: every replica's pretrain, evaluate and transfer outputs -> reports/summary.json
(pooled over replicas, tests over replicas) and reports/metrics.json (the headline numbers, the
one DVC metrics file)."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from tasks.summary import summarize


@flow(name="summarize")
def summarize_flow(params: Params) -> None:
    summarize(params)


if __name__ == "__main__":
    run_stage(summarize_flow)

"""Stage prepare@<dataset>: embedded source -> data/prepared/<dataset>/."""

from prefect import flow

from flows.cli import run_stage, stage_arg
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.prepare import prepare_dataset


def dataset_arg(params: Params, dataset: str) -> None:
    if dataset not in params.datasets:
        raise PipelineError(
            f"params.yaml: datasets has no {dataset!r}; allowed: {', '.join(params.datasets)}"
        )


@flow(name="prepare")
def prepare_flow(dataset: str, params: Params) -> None:
    dataset_arg(params, dataset)
    prepare_dataset(dataset, params)


if __name__ == "__main__":
    run_stage(prepare_flow, stage_arg("python -m flows.prepare <dataset>"), check=dataset_arg)

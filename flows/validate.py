"""Stage validate: Great Expectations on every prepared dataset's manifest."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.validate import summary_line, validate_dataset


@flow(name="validate")
def validate_flow(params: Params) -> None:
    reports = [validate_dataset(name, params) for name in params.datasets]
    failed = [r for r in reports if not r["success"]]
    if failed:
        raise PipelineError(
            "data validation failed: "
            + " | ".join(summary_line(r) for r in failed)
            + "; see reports/validation/<dataset>.json"
        )


if __name__ == "__main__":
    run_stage(validate_flow)

"""Stage validate: Great Expectations on every prepared dataset."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.validate import DOCS_DIR, RESULTS_DIR, Suites, summary_line, validate_dataset


@flow(name="validate")
def validate_flow(params: Params) -> None:
    suites = Suites.create()
    try:
        reports = [validate_dataset(name, params, suites) for name in params.datasets]
    finally:
        suites.publish(DOCS_DIR)
    failed = [r for r in reports if not r["success"]]
    if failed:
        raise PipelineError(
            "data validation failed: "
            + " | ".join(summary_line(r) for r in failed)
            + f"; details in {RESULTS_DIR}/<dataset>.json and {DOCS_DIR}/index.html"
        )


if __name__ == "__main__":
    run_stage(validate_flow)

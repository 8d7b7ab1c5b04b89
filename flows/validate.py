"""Stage validate: Great Expectations on every prepared dataset."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from simclr.errors import PipelineError
from tasks.paths import VALIDATION_DOCS, VALIDATION_RESULTS
from tasks.validate import Suites, summary_line, validate_dataset


@flow(name="validate")
def validate_flow(params: Params) -> None:
    suites = Suites.create()
    try:
        reports = [validate_dataset(name, params, suites) for name in params.datasets]
        # Published once every dataset was checked (passed or failed): a stage stopped by an
        # error keeps the previous Data Docs, and the error is what the user sees.
        suites.publish(VALIDATION_DOCS)
    finally:
        suites.discard()
    failed = [r for r in reports if not r["success"]]
    if failed:
        raise PipelineError(
            "data validation failed: "
            + " | ".join(summary_line(r) for r in failed)
            + f"; details in {VALIDATION_RESULTS}/<dataset>.json and {VALIDATION_DOCS}/index.html"
        )


if __name__ == "__main__":
    run_stage(validate_flow)

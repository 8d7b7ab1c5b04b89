"""Stage report: every stage's outputs -> reports/report.md, report.html and their figures."""

from prefect import flow

from flows.cli import run_stage
from simclr.config import Params
from tasks.report import write_report


@flow(name="report")
def report_flow(params: Params) -> None:
    write_report(params)


if __name__ == "__main__":
    run_stage(report_flow)

"""The report stage's one task: from the inputs dvc.yaml declares (tasks/report_inputs.py), write
the report's figures, the plot data, reports/report.md and the self-contained report.html."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.errors import PipelineError
from simclr.io import write_text
from tasks.artifacts import artifact_key, publish
from tasks.figures.report import accuracy_vs_fraction, pretraining_curves, sample_grid
from tasks.paths import (
    CURVES_FIGURE,
    FRACTIONS_FIGURE,
    LINEAR_FRACTIONS_PLOT,
    REPORT_HTML,
    REPORT_MD,
    SAMPLES_FIGURE,
)
from tasks.plot_data import linear_fractions_csv
from tasks.report_html import figure_links, inline_figures, to_html
from tasks.report_inputs import ReportInputs, read_inputs
from tasks.report_markdown import render
from tasks.retries import TRANSIENT

TITLE = "SimCLR pipeline report"


def write_figures(inputs: ReportInputs) -> None:
    """The figures drawn from the report's inputs (the other stages draw their own)."""
    pretraining_curves(inputs.curves, CURVES_FIGURE)
    accuracy_vs_fraction(inputs.evaluations, FRACTIONS_FIGURE)
    samples = {
        name: (data.train.images, data.train.labels, list(data.class_names))
        for name, data in inputs.datasets.items()
    }
    sample_grid(samples, SAMPLES_FIGURE)


def read_figures(markdown_text: str) -> dict[str, bytes]:
    """The PNG bytes of every figure `markdown_text` links (relative to report.md)."""
    figures = {}
    for link in figure_links(markdown_text):
        path = REPORT_MD.parent / link
        if not path.is_file():
            raise PipelineError(f"{path}: figure missing; re-run the stage that writes it")
        figures[link] = path.read_bytes()
    return figures


def build_report(params: Params) -> str:
    """Read the inputs, write every output of the report stage; report.md's text."""
    inputs = read_inputs(params)
    write_text(
        LINEAR_FRACTIONS_PLOT, linear_fractions_csv(inputs.evaluations[params.pretrain.dataset])
    )
    write_figures(inputs)
    text = render(inputs)
    write_text(REPORT_MD, text)
    write_text(REPORT_HTML, to_html(text, TITLE, read_figures(text)))
    return text


@task(name="render-report", cache_policy=NONE, **TRANSIENT)
def write_report(params: Params) -> Path:
    text = build_report(params)
    summary = f"{REPORT_MD}: {len(text.splitlines())} lines"
    publish(artifact_key("report"), summary, inline_figures(text, read_figures(text)))
    get_run_logger().info("wrote %s and %s", REPORT_MD, REPORT_HTML)
    return REPORT_MD

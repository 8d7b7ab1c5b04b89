"""The report renders from stage outputs (two pretraining replicas pooled by the real summarize
stage), is self-contained, and reads only what dvc.yaml declares."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from helpers import ROOT
from PIL import Image
from report_fixture import fixture_params

from simclr.evaluate import BASELINES, PRETRAINED, PROTOCOLS
from tasks.labels import METHOD_LABELS, PROTOCOL_LABELS, PROTOCOL_TITLES
from tasks.paths import REPORT_HTML, REPORT_MD
from tasks.report import build_report
from tasks.report_inputs import read_inputs
from tasks.report_markdown import render


@pytest.fixture(scope="module")
def rendered(report_fixture_dir):
    return report_fixture_dir


def test_report_has_every_section_and_its_figures(rendered):
    md = (rendered / REPORT_MD).read_text()
    for heading in (
        "## Run",
        "## Data",
        "## Augmentation",
        "## Pretraining",
        "## Accuracy against labelled fraction",
        "## Transfer",
        "## Embedding and errors",
        "## SimCLR against the baselines",
        "## Evaluation on `digits`",
        "## Transfer to `faces`",
        "## Experiments",
    ):
        assert heading in md, heading
    assert "2 pretraining replicas (0, 1; replica r pretrains with seed 0 + r)" in md
    assert "final loss 4.2500 ± 0.0707" in md  # the replicas' 4.2 and 4.3, mean ± std
    assert "pretraining replicas × label subsets; 20%: 2 × 2, 100%: 2 × 1" in md
    assert (
        "departures from the paper's recipe (the library's defaults" in md
        and "`pretrain.epochs`: `3`" in md
    )
    assert "git commit of the pretraining: `abc`" in md  # from reports/pretrain/run.json
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md)
    assert len(figures) == 6
    assert {"pretrain/0/views.png", "evaluate/0/embedding.png"} <= set(figures)  # replica 0
    for f in figures:
        assert (rendered / "reports" / f).stat().st_size > 1000, f
    assert "### Fine-tuning" in md and "p=" in md
    # The experiments table is not the report's (experiment refs are no stage's input): the
    # report says where it is.
    assert "`python -m flows.compare --output reports/experiments.md`" in md


def test_html_is_self_contained_and_every_figure_is_embedded(rendered):
    html = (rendered / REPORT_HTML).read_text()
    md = (rendered / REPORT_MD).read_text()
    # No external reference of any kind: every src/href a data: URI, no URL, no CSS url().
    assert not re.search(r"""(?:src|href)\s*=\s*["'](?!data:)""", html)
    assert not re.search(r"https?:|ftp:|url\(|@import", html)
    sources = re.findall(r'<img[^>]*src="data:image/png;base64,([^"]+)"', html)
    assert len(sources) == len(re.findall(r"!\[", md)) == 6
    for data in sources:  # each one a decodable PNG
        with Image.open(io.BytesIO(base64.b64decode(data))) as img:
            img.load()
            assert img.width > 50 and img.height > 50


def test_linear_fraction_plot_data(rendered):
    rows = list(csv.DictReader((rendered / "reports/plots/linear_fractions.csv").open()))
    assert [r["labels_percent"] for r in rows] == ["20", "100"]
    assert set(rows[0]) == {"labels_percent", "simclr", "random_init", "raw_pixels"}


def test_labels_name_every_protocol_and_method_of_the_metrics():
    assert list(PROTOCOL_LABELS) == list(PROTOCOL_TITLES) == list(PROTOCOLS)
    assert list(METHOD_LABELS) == [PRETRAINED, *BASELINES]


# Audit events (sys.addaudithook) of file access and of starting processes.
FILE_EVENTS = {"open", "os.rename", "os.remove", "os.mkdir", "os.listdir", "os.scandir"}
PROCESS_EVENTS = {"subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.fork"}
WATCHED = FILE_EVENTS | PROCESS_EVENTS
_recording: list[list] = []


def _audit(event: str, args: tuple) -> None:
    if _recording and event in WATCHED:
        _recording[-1].append((event, args))


sys.addaudithook(_audit)  # for the whole session (a hook cannot be removed); idle when unused


@contextmanager
def io_events():
    """The audited file and process events that the block causes, as (event, args)."""
    events: list = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.pop()


def test_render_is_a_pure_function_of_its_inputs(report_fixture_dir, monkeypatch):
    monkeypatch.chdir(report_fixture_dir)
    inputs = read_inputs(fixture_params())
    with io_events() as events:
        first, second = render(inputs), render(inputs)
    assert events == []  # no file opened, listed or written, no process started
    assert first == second == (report_fixture_dir / REPORT_MD).read_text()


def _inside(path, root: Path) -> str | None:
    """`path` relative to `root` (posix), or None for paths outside it and file descriptors."""
    if isinstance(path, int):
        return None
    full = Path(os.fsdecode(path))
    full = (full if full.is_absolute() else Path.cwd() / full).resolve()
    return full.relative_to(root).as_posix() if full.is_relative_to(root) else None


def _reads_and_writes(events: list, root: Path) -> tuple[set[str], set[str]]:
    """Files read (opened for reading only) and files written (renamed into place)."""
    reads, writes = set(), set()
    for event, args in events:
        if event == "open":
            path, mode, flags = args
            writing = any(c in mode for c in "wax+") if mode else flags & (os.O_WRONLY | os.O_RDWR)
            if not writing and (rel := _inside(path, root)) is not None:
                reads.add(rel)
        elif event == "os.rename" and (rel := _inside(args[1], root)) is not None:
            writes.add(rel)
    return reads, writes


def _under(path: str, declared: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in declared)


def test_the_report_stage_reads_its_declared_deps_only_and_writes_its_outs(
    report_fixture_dir, tmp_path, monkeypatch
):
    stage = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]["report"]
    code = ("simclr/", "tasks/", "flows/")
    first = str(fixture_params().replicas[0])  # what DVC makes of ${replicas[0]}
    deps = [d.replace("${replicas[0]}", first) for d in stage["deps"]]
    data_deps = [d for d in deps if not d.startswith(code)]
    outs = [next(iter(o)) if isinstance(o, dict) else o for o in stage["outs"]]
    work = tmp_path / "repo"
    shutil.copytree(report_fixture_dir, work)
    monkeypatch.chdir(work)
    with io_events() as events:
        build_report(fixture_params())
    assert [e for e in events if e[0] in PROCESS_EVENTS] == []  # no dvc, no git, nothing
    reads, writes = _reads_and_writes(events, work.resolve())
    assert writes == set(outs)  # every out, nothing else
    undeclared = sorted(p for p in reads if not _under(p, data_deps + outs))
    assert undeclared == []
    unread = [d for d in data_deps if not any(_under(p, [d]) for p in reads)]
    assert unread == []  # every declared input is one the report reads

"""The report renders from stage outputs, is self-contained, and the compare command lists
experiments of a real DVC repository."""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from helpers import BIN, ROOT, init_repo, repo_env
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
        "## Evaluation on `digits`",
        "## Transfer to `faces`",
        "## Experiments",
    ):
        assert heading in md, heading
    assert "params that differ from the built-in defaults" in md and "`pretrain.epochs`: 3" in md
    assert "git commit of the pretraining: `abc`" in md  # from reports/pretrain/run.json
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(figures) == 6
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


METRICS_STAGE = """\
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
acc = min(1.0, 0.5 + p["lr"])
out = {"linear": {"simclr": {"1.0": {"mean": acc, "std": 0.0, "n": 1}}}}
pathlib.Path("reports/evaluate").mkdir(parents=True, exist_ok=True)
json.dump(out, open("reports/evaluate/metrics.json", "w"))
"""

DVC_YAML = """\
stages:
  evaluate:
    cmd: python make_metrics.py
    deps: [make_metrics.py]
    params: [lr, batch]
    outs:
      - reports/evaluate/metrics.json:
          cache: false
metrics:
  - reports/evaluate/metrics.json
"""


def _run(*cmd, cwd) -> str:
    r = subprocess.run(cmd, cwd=cwd, env=repo_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"{cmd}: {r.stdout}\n{r.stderr}"
    return r.stdout


@pytest.fixture(scope="module")
def experiments_repo(tmp_path_factory):
    """A DVC repository with two experiments on HEAD, each with its metrics."""
    repo = tmp_path_factory.mktemp("experiments")
    (repo / "make_metrics.py").write_text(METRICS_STAGE)
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text("lr: 0.1\nbatch: 32\n")
    init_repo(lambda *cmd: _run(*cmd, cwd=repo))
    _run("dvc", "exp", "run", "-n", "low-lr", "-S", "lr=0.2", cwd=repo)
    _run("dvc", "exp", "run", "-n", "high-lr", "-S", "lr=0.4", cwd=repo)
    return repo


def compare_command(repo: Path) -> list[str]:
    return [str(BIN / "python"), "-m", "flows.compare", "--repo", str(repo)]


def test_compare_lists_experiments_with_their_differing_params(experiments_repo):
    env = repo_env()

    def run(*cmd):
        return _run(*cmd, cwd=ROOT)

    compare = compare_command(experiments_repo)
    out = run(*compare, "--format", "csv", "--sort", "evaluate linear 100%")
    rows = list(csv.DictReader(io.StringIO(out)))
    named = [r for r in rows if r["experiment"] in ("low-lr", "high-lr")]
    assert [r["experiment"] for r in named] == ["high-lr", "low-lr"]  # sorted, best first
    assert [r["lr"] for r in named] == ["0.4", "0.2"] and "batch" not in rows[0]  # only varying
    assert float(named[0]["evaluate linear 100%"]) == pytest.approx(0.9)
    md = run(*compare)
    assert "| experiment | rev | lr |" in md and "**0.9**" in md  # best value marked
    bad = subprocess.run(
        [*compare, "--sort", "nope"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: no column 'nope' to sort by")


def test_compare_writes_the_table_to_the_file_it_is_given(experiments_repo, tmp_path):
    compare = compare_command(experiments_repo)
    printed = _run(*compare, "--format", "csv", cwd=ROOT)
    rows = list(csv.DictReader(io.StringIO(printed)))
    assert {"low-lr", "high-lr"} <= {r["experiment"] for r in rows}
    out = {suffix: tmp_path / f"experiments{suffix}" for suffix in (".md", ".html", ".csv")}
    for path in out.values():
        said = _run(*compare, "--output", str(path), cwd=ROOT)
        assert said == f"wrote {path}: {len(rows)} rows\n"  # and nothing else
    assert out[".csv"].read_text() == printed  # the same table as printed
    md = out[".md"].read_text()
    assert md.startswith("# DVC experiments") and "| experiment | rev | lr |" in md
    assert "**0.9**" in md and "high-lr" in md and "low-lr" in md
    page = out[".html"].read_text()
    assert "<title>DVC experiments</title>" in page and "<th>experiment</th>" in page
    assert "<strong>0.9</strong>" in page and not re.search(r"https?:|url\(|@import", page)
    bad = subprocess.run(
        [*compare, "--output", str(tmp_path / "table.txt")],
        cwd=ROOT,
        env=repo_env(),
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and not (tmp_path / "table.txt").exists()
    assert bad.stderr.splitlines() == [
        f"error: --output {tmp_path / 'table.txt'}: no format for .txt; use a file ending in "
        ".md, .html, .csv"
    ]


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
    data_deps = [d for d in stage["deps"] if not d.startswith(code)]
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

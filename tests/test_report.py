"""The report renders from stage outputs, is self-contained, and the compare command lists
experiments of a real DVC repository."""

from __future__ import annotations

import base64
import csv
import io
import re
import subprocess

import pytest
from conftest import BIN, ROOT, init_repo, repo_env
from PIL import Image

from tasks.paths import REPORT_HTML, REPORT_MD


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
    figures = re.findall(r"!\[[^\]]*\]\((figures/[^)]+\.png)\)", md)
    assert len(figures) == 6
    for f in figures:
        assert (rendered / "reports" / f).stat().st_size > 1000, f
    assert "### Fine-tuning" in md and "p=" in md


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


def test_compare_lists_experiments_with_their_differing_params(tmp_path):
    env = repo_env()

    def run(*cmd, cwd=tmp_path):
        r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{cmd}: {r.stdout}\n{r.stderr}"
        return r.stdout

    (tmp_path / "make_metrics.py").write_text(METRICS_STAGE)
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("lr: 0.1\nbatch: 32\n")
    init_repo(run)
    run("dvc", "exp", "run", "-n", "low-lr", "-S", "lr=0.2")
    run("dvc", "exp", "run", "-n", "high-lr", "-S", "lr=0.4")
    compare = [str(BIN / "python"), "-m", "flows.compare", "--repo", str(tmp_path)]
    out = run(*compare, "--format", "csv", "--sort", "evaluate linear 100%", cwd=ROOT)
    rows = list(csv.DictReader(io.StringIO(out)))
    named = [r for r in rows if r["experiment"] in ("low-lr", "high-lr")]
    assert [r["experiment"] for r in named] == ["high-lr", "low-lr"]  # sorted, best first
    assert [r["lr"] for r in named] == ["0.4", "0.2"] and "batch" not in rows[0]  # only varying
    assert float(named[0]["evaluate linear 100%"]) == pytest.approx(0.9)
    md = run(*compare, cwd=ROOT)
    assert "| experiment | rev | lr |" in md and "**0.9**" in md  # best value marked
    bad = subprocess.run(
        [*compare, "--sort", "nope"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: no column 'nope' to sort by")

"""Experiments compared for real: a grid swept through DVC's own queue (`dvc exp run --queue`,
`dvc queue start`) in a temporary Git + DVC repository, `python -m flows.compare` grouping the
replicas of each grid point and telling differences from the noise (numbers checked against
scipy), and `python -m flows.reproduce` on the committed results. The pipeline is a one-stage
stand-in (helpers.FAKE_STAGE) writing the real schema, so the whole grid takes seconds."""

from __future__ import annotations

import csv
import io
import json
import re
import time

import numpy as np
import pytest
from helpers import BIN, ROOT, fake_pipeline, fake_value, init_repo, repo_env, runner
from scipy import stats

GRID = {"lr": [0.2, 0.4]}
REPLICAS = [0, 1, 2]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """HEAD with committed results (lr 0.1, replicas 0-2), then through DVC's queue: lr 0.2 and
    0.4, each as three one-replica experiments, and a one-replica configuration (lr 0.3)."""
    path = fake_pipeline(tmp_path_factory.mktemp("swept"))
    run = runner(path, repo_env(), timeout=300)
    init_repo(run)
    run("dvc", "repro")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "results")
    start = time.monotonic()
    run(
        "dvc", "exp", "run", "--queue", "-n", "sw", "-S", "lr=0.2,0.4", "-S", "replicas=[0],[1],[2]"
    )
    run("dvc", "exp", "run", "--queue", "-n", "single", "-S", "lr=0.3", "-S", "replicas=[5]")
    run("dvc", "queue", "start", "--jobs", "1")
    deadline = time.monotonic() + 240
    while re.search(r"\b(Queued|Running)\b", run("dvc", "queue", "status").stdout):
        assert time.monotonic() < deadline, run("dvc", "queue", "status").stdout
        time.sleep(1)
    return {"path": path, "run": run, "seconds": time.monotonic() - start}


def compare(swept, *args: str, check: bool = True):
    cmd = [str(BIN / "python"), "-m", "flows.compare", "--repo", str(swept["path"]), *args]
    return runner(ROOT, repo_env())(*cmd, check=check)


def test_the_queue_ran_every_grid_point_and_compare_pools_replicas_by_params(swept):
    status = swept["run"]("dvc", "queue", "status").stdout
    assert status.count("Success") == 7 and "Failed" not in status
    rows = list(csv.DictReader(io.StringIO(compare(swept, "--format", "csv").stdout)))
    by_lr = {r["lr"]: r for r in rows}
    assert sorted(by_lr) == ["0.1", "0.2", "0.3", "0.4"] and len(rows) == 4
    assert by_lr["0.2"]["experiment"] == "sw-1, sw-2, sw-3" and by_lr["0.2"]["replicas"] == "0 1 2"
    assert by_lr["0.1"]["experiment"] == "master" and by_lr["0.3"]["replicas"] == "5"
    expected = np.mean([fake_value("digits.linear.100%", 0.4, r) for r in REPLICAS])
    assert float(by_lr["0.4"]["digits.linear.100%"]) == pytest.approx(expected)
    md = compare(swept, "--sort", "digits.linear.100%").stdout
    assert "| 1 | sw-4, sw-5, sw-6 |" in md  # best first
    assert "**0.9000 ± 0.0200**" in md  # lr 0.4: 0.88, 0.90, 0.92; the best in bold


def test_compare_against_a_baseline_tells_differences_from_the_noise(swept):
    rows = list(
        csv.DictReader(
            io.StringIO(compare(swept, "--baseline", "master", "--format", "csv").stdout)
        )
    )
    ours = {(r["experiment"], r["metric"]): r for r in rows}
    for metric, verdict in (("digits.linear.100%", "yes"), ("digits.knn.100%", "no")):
        base = [fake_value(metric, 0.1, r) for r in REPLICAS]
        other = [fake_value(metric, 0.4, r) for r in REPLICAS]
        row = ours[("sw-4, sw-5, sw-6", metric)]
        ref = stats.ttest_rel(other, base)  # paired: the same replicas (seeds) on both sides
        assert float(row["p"]) == pytest.approx(ref.pvalue, rel=1e-9)
        ci = ref.confidence_interval(0.95)
        assert [float(row["ci low"]), float(row["ci high"])] == pytest.approx([ci.low, ci.high])
        assert float(row["diff"]) == pytest.approx(np.mean(other) - np.mean(base))
        assert row["beyond noise"] == verdict and row["test"].startswith("paired t-test over 3")
    single = ours[("single", "digits.linear.100%")]
    assert single["beyond noise"] == "cannot tell" and single["p"] == ""
    md = compare(swept, "--baseline", "master").stdout
    assert "### single vs master (baseline)" in md
    assert "Only 1 pretraining replica on a side" in md and "cannot tell which" in md
    # a revision names the same baseline
    assert (
        compare(swept, "--baseline", "HEAD", "--format", "csv").stdout
        == "\n".join(compare(swept, "--baseline", "master", "--format", "csv").stdout.splitlines())
        + "\n"
    )


def test_an_unknown_baseline_is_one_line(swept):
    r = compare(swept, "--baseline", "nope", check=False)
    assert r.returncode == 2 and r.stderr.startswith(
        "error: --baseline nope: no such experiment or revision with results; known: master"
    )
    assert len(r.stderr.splitlines()) == 1


def test_compare_writes_the_result_to_the_file_it_is_given(swept, tmp_path):
    printed = compare(swept, "--baseline", "master", "--format", "csv").stdout
    for suffix in (".md", ".html", ".csv"):
        path = tmp_path / f"experiments{suffix}"
        assert compare(swept, "--baseline", "master", "--output", str(path)).stdout == (
            f"wrote {path}\n"
        )
    assert (tmp_path / "experiments.csv").read_text() == printed
    assert "### sw-4, sw-5, sw-6 vs master (baseline)" in (tmp_path / "experiments.md").read_text()
    page = (tmp_path / "experiments.html").read_text()
    assert "<title>DVC experiments</title>" in page and not re.search(r"https?:|url\(", page)
    bad = compare(swept, "--output", str(tmp_path / "t.txt"), check=False)
    assert bad.returncode == 2 and not (tmp_path / "t.txt").exists()
    assert bad.stderr.splitlines() == [
        f"error: --output {tmp_path / 't.txt'}: no format for .txt; use a file ending in "
        ".md, .html, .csv"
    ]


def reproduce(swept, *args: str):
    cmd = [str(BIN / "python"), "-m", "flows.reproduce", "--repo", str(swept["path"]), *args]
    return runner(ROOT, repo_env())(*cmd, check=False)


def _shift(swept, metric: str, by: list[float]) -> None:
    """Move the workspace's replica values of `metric` by `by` (as another machine might)."""
    path = swept["path"] / "reports" / "summary.json"
    summary = json.loads(path.read_text())
    cell = summary["headline"][metric]
    for r, d in zip(sorted(cell["by_replica"]), by, strict=True):
        cell["by_replica"][r] += d
    path.write_text(json.dumps(summary))


def test_reproduce_says_identical_within_noise_or_moved_metric_by_metric(swept):
    path = swept["path"]
    same = reproduce(swept)
    assert same.returncode == 0, same.stderr
    assert "- 2 identical" in same.stdout and "moved beyond" not in same.stdout
    try:
        _shift(swept, "digits.knn.100%", [0.01, -0.02, 0.005])  # about the replicas' spread
        _shift(swept, "digits.linear.100%", [0.10, 0.11, 0.12])  # far beyond it
        moved = reproduce(swept, "--against", "HEAD")
        assert moved.returncode == 1
        rows = {ln.split(" | ")[0].strip("| "): ln for ln in moved.stdout.splitlines()}
        assert rows["digits.knn.100%"].endswith("| within noise |")
        assert rows["digits.linear.100%"].endswith("| moved beyond noise |")
        d = np.array([0.10, 0.11, 0.12])
        half = stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
        assert f"| +0.1100 | ± {half:.4f} |" in rows["digits.linear.100%"]
        (path / "params.yaml").write_text("lr: 0.2\nreplicas: [0, 1, 2]\n")
        other = reproduce(swept)
        assert other.returncode == 2 and other.stderr.startswith(
            "error: params.yaml differs from HEAD's in lr: this is another experiment"
        )
    finally:
        swept["run"]("git", "checkout", "--", "reports/summary.json", "params.yaml")

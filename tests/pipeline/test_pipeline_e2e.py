"""The real `dvc repro` on tiny params (two pretraining replicas), in a temporary Git
repository, with every stage's flow reporting to a real Prefect server on a loopback port."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil

import pandas as pd
import pytest
from helpers import BIN, ROOT, TINY_PARAMS, copy_code, init_repo, repo_env, runner
from helpers import api as _api

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def repo(tmp_path_factory, prefect_api):
    path = tmp_path_factory.mktemp("repo")
    copy_code(path)
    shutil.copy(ROOT / "dvc.yaml", path)
    (path / "params.yaml").write_text(TINY_PARAMS)
    run = runner(path, repo_env(PREFECT_API_URL=prefect_api))
    init_repo(run)
    since = dt.datetime.now(dt.UTC).isoformat()  # the server is shared with other modules
    first = run("dvc", "repro")
    return {"path": path, "run": run, "first": first, "since": since}


def test_repro_writes_every_output(repo):
    path = repo["path"]
    for out in (
        "data/prepared/digits/manifest.parquet",
        "data/prepared/faces/train/images.npy",
        "reports/validation/results/digits.json",
        "reports/validation/docs/index.html",
        *(f"models/simclr-{r}.pt" for r in (0, 1)),
        *(f"reports/pretrain/{r}/{f}" for r in (0, 1) for f in ("metrics.json", "run.json")),
        "reports/pretrain/1/plots/metrics/loss.tsv",
        "reports/pretrain/0/plots/metrics/knn_accuracy.tsv",
        "reports/pretrain/0/views.png",
        *(f"reports/evaluate/{r}/details.json" for r in (0, 1)),
        "reports/evaluate/0/embedding.png",
        "reports/evaluate/1/confusion.png",
        *(f"reports/transfer/faces/{r}/details.json" for r in (0, 1)),
        "reports/summary.json",
        "reports/metrics.json",
        "reports/report.md",
        "reports/report.html",
        "reports/figures/curves.png",
        "reports/figures/fractions.png",
        "reports/figures/samples.png",
        "reports/plots/linear_fractions.csv",
        "dvc.lock",
    ):
        assert (path / out).is_file(), out
    loss = (path / "reports/pretrain/0/plots/metrics/loss.tsv").read_text().splitlines()
    assert len(loss) == 3  # header + 2 epochs
    assert not list(path.glob(".resume/*.pt"))  # resumable state removed once finished
    report = (path / "reports/report.md").read_text()
    assert "Evaluation on `digits`" in report and "Transfer to `faces`" in report
    assert "### Fine-tuning" in report and "### kNN" in report and "p=" in report
    assert "a t-test over the pretraining replicas" in report


def test_headline_metrics_are_the_means_of_the_summary_over_replicas(repo):
    path = repo["path"]
    metrics = json.loads((path / "reports/metrics.json").read_text())
    summary = json.loads((path / "reports/summary.json").read_text())
    assert summary["replicas"] == [0, 1] and set(metrics) == {"pretrain", "digits", "faces"}
    assert set(metrics["pretrain"]) == {"loss", "knn_accuracy"}
    for name in ("digits", "faces"):
        assert set(metrics[name]) == {"linear", "knn", "finetune", "linear_gain"}
        for family, by_fraction in metrics[name].items():
            assert set(by_fraction) == {"10%", "100%"}
            for label, value in by_fraction.items():
                head = summary["headline"][f"{name}.{family}.{label}"]
                assert value == pytest.approx(sum(head["by_replica"].values()) / 2)
                assert set(head["by_replica"]) == {"0", "1"}
        data = summary["datasets"][name]
        assert set(data["linear"]) == set(data["knn"]) == {"simclr", "random_init", "raw_pixels"}
        assert set(data["finetune"]) == {"simclr", "random_init"}
        for protocol in ("linear", "knn", "finetune"):
            subsets = 1 if protocol == "finetune" else 2  # evaluate.finetune.seeds, .seeds
            for cells in data[protocol].values():
                assert (cells["0.1"]["replicas"], cells["0.1"]["subsets"]) == (2, subsets)
                assert (cells["1.0"]["n"], cells["1.0"]["subsets"]) == (2, 1)
                for cell in cells.values():
                    assert 0 <= cell["mean"] <= 1 and cell["std"] >= 0
            for tests in data["significance"][protocol].values():
                for t in tests.values():
                    assert 0 < t["p"] <= 1 and t["test"].startswith("t-test over 2 pretraining")
                    assert t["ci"][0] <= t["diff"] <= t["ci"][1]


def test_every_stage_ran_as_a_flow_on_the_prefect_server(repo, prefect_api):
    after = {"flow_runs": {"start_time": {"after_": repo["since"]}}, "limit": 100}
    runs = _api(prefect_api, "/flow_runs/filter", after)
    completed = {}
    for r in runs:
        if r["state_type"] == "COMPLETED":
            completed[r["flow_id"]] = completed.get(r["flow_id"], 0) + 1
    flows = {f["id"]: f["name"] for f in _api(prefect_api, "/flows/filter", {"limit": 100})}
    names = {flows[i]: n for i, n in completed.items()}
    # Runs after the first repro only: one flow run per stage, each Completed.
    assert names == {
        "prepare": 2,
        "validate": 1,
        "pretrain": 2,
        "evaluate": 2,
        "transfer": 2,
        "summarize": 1,
        "report": 1,
    }


def test_second_repro_runs_no_stage(repo):
    second = repo["run"]("dvc", "repro")
    assert "Running stage" not in second.stdout
    assert "Data and pipelines are up to date" in second.stdout


def ran(result) -> set[str]:
    return set(re.findall(r"Running stage '([^']+)'", result.stdout))


def test_adding_a_replica_runs_only_its_stages_and_the_pooling(repo):
    path, run = repo["path"], repo["run"]
    params = path / "params.yaml"
    good = params.read_text()
    before = {r: (path / f"models/simclr-{r}.pt").read_bytes() for r in (0, 1)}
    params.write_text(good.replace("replicas: [0, 1]", "replicas: [0, 1, 2]"))
    try:
        added = run("dvc", "repro")
        summary = json.loads((path / "reports/summary.json").read_text())
    finally:
        params.write_text(good)
    assert ran(added) == {"pretrain@2", "evaluate@2", "transfer@faces-2", "summarize", "report"}
    assert {r: (path / f"models/simclr-{r}.pt").read_bytes() for r in (0, 1)} == before
    assert summary["replicas"] == [0, 1, 2]
    assert summary["datasets"]["faces"]["linear"]["simclr"]["0.1"]["n"] == 3 * 2
    # Back to two replicas: only the pooling and the report run again (their outputs are
    # committed files, not in DVC's cache, so the run cache cannot restore them).
    back = run("dvc", "repro")
    assert ran(back) == {"summarize", "report"}, back.stdout
    assert "up to date" in run("dvc", "status").stdout


def test_metrics_and_plots_have_their_names(repo):
    metrics = json.loads(repo["run"]("dvc", "metrics", "show", "--json").stdout)
    files = {f for rev in metrics.values() for f in rev["data"]}
    # the headline numbers only (docs/outputs.md "Metrics files")
    assert files == {"reports/metrics.json"}
    plots = json.loads(repo["run"]("dvc", "plots", "show", "--json", "--split").stdout)
    assert not plots.get("errors"), plots.get("errors")
    names = set(plots["data"])
    assert {
        "Pretraining loss",
        "kNN monitor accuracy",
        "Linear probe against labelled fraction",
    } <= names
    assert "reports/figures/fractions.png" in names


def test_experiment_with_a_pretrain_param_is_listed_with_metrics(repo):
    repo["run"]("dvc", "exp", "run", "-n", "three-epochs", "-S", "pretrain.epochs=3")
    shown = json.loads(repo["run"]("dvc", "exp", "show", "--json").stdout)
    exps = [
        e
        for commit in shown
        for e in (commit.get("experiments") or [])
        if e.get("name") == "three-epochs"
    ]
    assert exps, shown
    data = exps[0]["revs"][0]["data"]
    assert data["params"]["params.yaml"]["data"]["pretrain"]["epochs"] == 3
    assert list(data["metrics"]) == ["reports/metrics.json"]
    assert 0 <= data["metrics"]["reports/metrics.json"]["data"]["digits"]["linear"]["100%"] <= 1


def test_compare_tells_the_experiment_from_the_noise_over_its_replicas(repo):
    # HEAD holds no results here: the tiny params' own run is an experiment too (DVC's run
    # cache restores its stages). Each `dvc exp run` leaves its results in the workspace, which
    # is then that experiment, not a configuration of its own.
    repo["run"]("dvc", "exp", "run", "-n", "two-epochs", "-S", "pretrain.epochs=2")
    compare = [str(BIN / "python"), "-m", "flows.compare", "--repo", str(repo["path"])]
    out = runner(ROOT, repo_env())(*compare, "--baseline", "three-epochs").stdout
    assert "### two-epochs vs three-epochs (baseline)" in out and "workspace" not in out
    assert out.count(" vs three-epochs (baseline)") == 1
    assert "paired t-test over 2 replicas (same seeds)" in out
    assert "1 degree of freedom" in out  # 2 replicas a side
    assert "| pretrain.loss |" in out and "| faces.linear.100% |" in out


def test_reproduce_checks_every_headline_metric_of_the_real_pipeline(repo):
    run = repo["run"]
    run("dvc", "exp", "apply", "three-epochs")  # the workspace: that experiment's results
    run("git", "add", "-A")
    run("git", "commit", "-qm", "three-epochs results")
    check = [str(BIN / "python"), "-m", "flows.reproduce", "--repo", str(repo["path"])]
    r = runner(ROOT, repo_env())(*check)
    assert "- 18 identical" in r.stdout and r.returncode == 0


def test_unknown_dataset_stops_with_one_line_and_leaves_lock_intact(repo):
    path = repo["path"]
    lock = (path / "dvc.lock").read_text()
    params = path / "params.yaml"
    good = params.read_text()
    params.write_text(good.replace("faces: {source: faces}", "faces: {source: imagenet}"))
    try:
        r = repo["run"]("dvc", "repro", check=False)
    finally:
        params.write_text(good)
    assert r.returncode != 0
    errors = [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("error:")]
    assert errors == [
        "error: params.yaml: datasets.faces.source = 'imagenet'; "
        "allowed: digits, faces, mnist, textures, cifar10, cifar100, stl10, imagefolder, npz"
    ]
    assert (path / "dvc.lock").read_text() == lock
    # DVC removes a stage's outputs before running it; the cache still has them.
    repo["run"]("dvc", "checkout", "--force")
    assert "up to date" in repo["run"]("dvc", "status").stdout


def test_bad_data_fails_validation_naming_the_expectation_and_rows(repo, prefect_api):
    path = repo["path"]
    manifest_path = path / "data/prepared/faces/manifest.parquet"
    manifest = pd.read_parquet(manifest_path)
    manifest.loc[5, "label"] = 9  # faces has classes 0 and 1
    manifest_path.chmod(0o644)  # DVC may link cached outputs read-only
    manifest.to_parquet(manifest_path, index=False)
    try:
        r = repo["run"]("python", "-m", "flows.validate", check=False)
        report = json.loads((path / "reports/validation/results/faces.json").read_text())
        docs = (path / "reports/validation/docs/index.html").read_text()
    finally:
        repo["run"]("dvc", "checkout", "--force", "data/prepared/faces")
    assert r.returncode == 2
    assert "Traceback" not in r.stdout + r.stderr  # a user error is a message, not a stack
    (error,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert "data validation failed: faces: labels in the class set: failed for 1 rows" in error
    assert not report["success"]
    (failed,) = [o for o in report["expectations"] if not o["success"]]
    assert failed["examples"][0]["label"] == 9
    assert "faces" in docs  # GX Data Docs list the failed validation
    artifacts = _api(
        prefect_api, "/artifacts/filter", {"artifacts": {"key": {"any_": ["validation-faces"]}}}
    )
    assert any("labels in the class set | FAIL | 1" in a["data"] for a in artifacts)

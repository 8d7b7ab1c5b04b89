"""The scheduled pipeline on a real Prefect server (loopback port) with a real process worker:
prefect.yaml deployed with `prefect deploy`, runs triggered through the API, `dvc exp run`
executing the tiny pipeline in a temporary Git + DVC repository."""

from __future__ import annotations

import json
import shutil
import time

import numpy as np
import pytest
from helpers import ROOT, TINY_PARAMS, copy_code, init_repo, process_worker, repo_env, runner
from helpers import api as _api

pytestmark = pytest.mark.e2e
TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
POOL = "simclr"  # as prefect.yaml


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, prefect_api):
    path = copy_code(tmp_path_factory.mktemp("scheduled"))
    for name in ("dvc.yaml", "prefect.yaml"):
        shutil.copy(ROOT / name, path)
    # One replica: the scheduling, not the replicas (test_pipeline_e2e), is under test.
    (path / "params.yaml").write_text(TINY_PARAMS.replace("replicas: [0, 1]", "replicas: [0]"))
    # Planted bad data for the failing run: a faces replacement whose images are blank.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 8, 8, 1), dtype=np.uint8)
    images[:5] = 0
    np.savez(path / "planted.npz", images=images, labels=np.arange(40) % 2)
    env = repo_env(
        PREFECT_API_URL=prefect_api,
        PWD=str(path),  # prefect.yaml's pull step: the directory deployed from
        PREFECT_WORKER_QUERY_SECONDS="1",
    )
    run = runner(path, env)
    init_repo(run)
    run("prefect", "work-pool", "create", POOL, "--type", "process")
    run("prefect", "--no-prompt", "deploy", "--name", "nightly")
    deployment = _api(prefect_api, "/deployments/name/simclr-pipeline/nightly")
    with process_worker(path, env, POOL):
        yield {"path": path, "run": run, "deployment": deployment, "api": prefect_api}


def trigger(d, **parameters) -> str:
    run = _api(
        d["api"],
        f"/deployments/{d['deployment']['id']}/create_flow_run",
        {"parameters": parameters},
    )
    return run["id"]


def wait(d, run_ids: list[str], timeout: float = 420) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        runs = [_api(d["api"], f"/flow_runs/{i}") for i in run_ids]
        if all(r["state"]["type"] in TERMINAL for r in runs):
            return runs
        if time.monotonic() > deadline:
            pytest.fail(f"runs not finished in {timeout} s: {[r['state'] for r in runs]}")
        time.sleep(2)


def test_deployment_has_its_schedule_limit_and_upcoming_runs(deployed):
    d = deployed["deployment"]
    [schedule] = d["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["active"]
    assert d["global_concurrency_limit"]["limit"] == 1 and d["work_pool_name"] == POOL
    assert d["concurrency_options"]["collision_strategy"] == "ENQUEUE"
    deadline = time.monotonic() + 60
    body = {
        "flow_runs": {
            "deployment_id": {"any_": [d["id"]]},
            "state": {"type": {"any_": ["SCHEDULED"]}},
        }
    }
    while not (upcoming := _api(deployed["api"], "/flow_runs/filter", body)):
        assert time.monotonic() < deadline, "the server scheduled no runs"
        time.sleep(2)
    assert all(r["expected_start_time"][11:16] == "03:00" for r in upcoming)


def test_triggered_run_completes_with_artifacts_and_a_dvc_experiment(deployed):
    [run] = wait(
        deployed, [trigger(deployed, overrides={"pretrain.epochs": 1}, experiment="tiny-ok")]
    )
    assert run["state"]["type"] == "COMPLETED", run["state"]
    assert "exp:tiny-ok" in run["tags"] and any(t.startswith("git:") for t in run["tags"])
    api = deployed["api"]
    table = _api(api, "/artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [run["id"]]}}})
    [experiments] = [a for a in table if a["key"] == "experiments-metrics"]
    rows = (
        json.loads(experiments["data"])
        if isinstance(experiments["data"], str)
        else experiments["data"]
    )
    ours = [r for r in rows if r["experiment"] == "tiny-ok"]
    assert ours and 0 <= ours[0]["digits.linear.100%"] <= 1 and ours[0]["replicas"] == "0"
    # Every stage ran as its own flow run, tagged with the experiment, with its artifacts.
    tagged = {"flow_runs": {"tags": {"all_": ["exp:tiny-ok"]}}}
    stage_runs = _api(api, "/flow_runs/filter", tagged)
    assert {"prepare", "validate", "pretrain", "evaluate", "transfer", "summarize", "report"} <= {
        _api(api, f"/flows/{r['flow_id']}")["name"] for r in stage_runs
    }
    keys = {
        a["key"]
        for a in _api(
            api,
            "/artifacts/filter",
            {"artifacts": {"flow_run_id": {"any_": [r["id"] for r in stage_runs]}}},
        )
    }
    assert {"pretrain-0", "pretrain-0-metrics", "evaluate-0", "evaluate-0-metrics"} <= keys
    assert {"summary", "summary-metrics", "report"} <= keys
    listed = json.loads(deployed["run"]("dvc", "exp", "show", "--json").stdout)
    [exp] = [e for c in listed for e in c.get("experiments") or [] if e.get("name") == "tiny-ok"]
    assert exp["revs"][0]["data"]["params"]["params.yaml"]["data"]["pretrain"]["epochs"] == 1


def test_run_on_planted_bad_data_fails_and_names_the_problem(deployed):
    overrides = {"datasets.faces": {"source": "npz", "path": "planted.npz"}}
    [run] = wait(deployed, [trigger(deployed, overrides=overrides, experiment="planted")])
    assert run["state"]["type"] == "FAILED", run["state"]
    message = run["state"]["message"]
    assert (
        "data validation failed" in message and "faces" in message and "blank" in message.lower()
    ), message


def test_two_runs_at_once_run_one_after_the_other_and_leave_the_workspace_clean(deployed):
    path, run = deployed["path"], deployed["run"]
    before = {n: (path / n).read_bytes() for n in ("params.yaml", "dvc.yaml")}
    # Only the evaluation's params differ from the earlier "tiny-ok" run, so DVC's run cache
    # may restore the stages before it: the scheduling is under test, not the pipeline.
    ids = [
        trigger(
            deployed, overrides={"pretrain.epochs": 1, "evaluate.knn_k": k}, experiment=f"twin-{k}"
        )
        for k in (3, 4)
    ]
    runs = wait(deployed, ids)
    assert [r["state"]["type"] for r in runs] == ["COMPLETED", "COMPLETED"], [
        r["state"] for r in runs
    ]
    first, second = sorted(runs, key=lambda r: r["start_time"])
    assert second["start_time"] >= first["end_time"], "the deployment's limit let them overlap"
    # The runs used temporary copies: the workspace is as committed, and no lock was written.
    assert {n: (path / n).read_bytes() for n in before} == before
    assert not (path / "dvc.lock").exists()
    assert run("git", "status", "--porcelain", "--untracked-files=no").stdout == ""
    # Each experiment is complete and consistent: applied, nothing is left to reproduce.
    run("dvc", "exp", "apply", "twin-4")
    assert "up to date" in run("dvc", "status").stdout
    assert "knn_k: 4" in (path / "params.yaml").read_text()

"""The sweep flow on a real Prefect server (loopback port) with a real process worker:
prefect.yaml's pipeline deployment deployed with `prefect deploy`, `flows.sweep` submitting a
grid x replicas as one flow run each, waiting for them and publishing the comparison. The
deployment runs `dvc exp run --temp` of a one-stage stand-in pipeline (helpers.FAKE_STAGE)."""

from __future__ import annotations

import json

import pytest
from helpers import ROOT, api, copy_code, fake_pipeline, init_repo, process_worker, repo_env, runner

pytestmark = pytest.mark.e2e
POOL = "sweep-test"  # its own pool: no other test's worker takes these runs


@pytest.fixture(scope="module")
def deployed(tmp_path_factory, prefect_api):
    path = fake_pipeline(copy_code(tmp_path_factory.mktemp("sweep")))
    (path / "prefect.yaml").write_text((ROOT / "prefect.yaml").read_text())
    env = repo_env(PREFECT_API_URL=prefect_api, PWD=str(path), PREFECT_WORKER_QUERY_SECONDS="1")
    run = runner(path, env)
    init_repo(run)
    run("prefect", "work-pool", "create", POOL, "--type", "process", "--overwrite")
    run("prefect", "--no-prompt", "deploy", "--name", "nightly", "--pool", POOL)
    with process_worker(path, env, POOL):
        yield {"path": path, "run": run, "api": prefect_api}


@pytest.fixture(scope="module")
def swept(deployed):
    """The sweep flow, run here against the server: lr 0.2 and 0.4 x replicas 0 and 1."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.sweep import sweep_flow

    with temporary_settings({PREFECT_API_URL: deployed["api"]}):
        state = sweep_flow(
            grid={"lr": [0.2, 0.4]},
            replicas=[0, 1],
            name="lr",
            repo=str(deployed["path"]),
            timeout=600,
            return_state=True,
        )
    return {**deployed, "state": state}


def test_the_sweep_runs_one_flow_run_per_experiment_and_waits_for_all(swept):
    assert swept["state"].is_completed(), swept["state"]
    runs = api(swept["api"], "/flow_runs/filter", {"flow_runs": {"tags": {"all_": ["sweep:lr"]}}})
    assert len(runs) == 4 and {r["state_type"] for r in runs} == {"COMPLETED"}
    overrides = sorted(json.dumps(r["parameters"]["overrides"], sort_keys=True) for r in runs)
    assert overrides == sorted(
        json.dumps({"lr": lr, "replicas": [r]}, sort_keys=True) for lr in (0.2, 0.4) for r in (0, 1)
    )
    # every one is a DVC experiment in the repository, the workspace left as it was
    shown = swept["run"]("dvc", "exp", "show", "--json").stdout
    assert all(f"lr-{i}-r{r}" in shown for i in (0, 1) for r in (0, 1))
    assert swept["run"]("git", "status", "--porcelain", "--untracked-files=no").stdout == ""


def test_the_sweep_publishes_the_comparison_with_replicas_grouped(swept):
    rows = swept["state"].result()
    assert {r["experiment"] for r in rows} == {"lr-1-r0, lr-1-r1"}  # against the first point
    assert {r["baseline"] for r in rows} == {"lr-0-r0, lr-0-r1"}
    linear = next(r for r in rows if r["metric"] == "digits.linear.100%")
    assert linear["n"] == linear["baseline n"] == 2 and linear["diff"] == pytest.approx(
        0.2, abs=0.05
    )
    [artifact] = api(
        swept["api"], "/artifacts/filter", {"artifacts": {"key": {"any_": ["sweep-lr"]}}}
    )
    assert "4 of 4 experiments" in artifact["description"]
    text = artifact["data"]
    assert "| 1 | lr-0-r0, lr-0-r1 |" in text and "| 2 | lr-1-r0, lr-1-r1 |" in text
    assert "### lr-1-r0, lr-1-r1 vs lr-0-r0, lr-0-r1 (baseline)" in text
    assert "paired t-test over 2 replicas" in text


def test_a_bad_grid_is_one_line():
    r = runner(ROOT, repo_env())("python", "-m", "flows.sweep", "--grid", "lr", check=False)
    assert r.returncode == 2
    assert r.stderr.splitlines() == [
        "error: --grid 'lr': write key=value1,value2 (a params.yaml key)"
    ]


DEAD_API = "http://127.0.0.1:9/api"  # nothing listens on the discard port


def sweep(*args: str, api: str = DEAD_API):
    """`python -m flows.sweep` run here (the repository's params.yaml) against `api`."""
    env = repo_env(PREFECT_API_URL=api)
    return runner(ROOT, env, timeout=120)("python", "-m", "flows.sweep", *args, check=False)


@pytest.mark.parametrize(
    "grid, line",
    [
        (
            "pretrain.epochz=1",
            "error: --grid pretrain.epochz=1: params.yaml: unknown key 'pretrain.epochz'; "
            "allowed: augment, batch_size,",
        ),
        (
            "pretrain.lr=0.1,-1",
            "error: --grid pretrain.lr=-1: params.yaml: pretrain.lr = -1; allowed: a finite "
            "number > 0",
        ),
        ("pretrain.lr.x=1", "error: --grid pretrain.lr.x=1: override pretrain.lr.x: params.yaml"),
    ],
)
def test_every_grid_point_is_checked_by_the_schema_before_the_server_is_asked(grid, line):
    r = sweep("--grid", grid)  # the dead API would be another line
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(line), r.stderr


@pytest.mark.parametrize(
    "args, line",
    [
        (["--replicas=-1,0,0"], "argument --replicas: '-1,0,0': write distinct replicas >= 0"),
        (["--replicas=0,0"], "argument --replicas: '0,0': write distinct replicas >= 0"),
        (["--name", "a b"], "argument --name: 'a b' is not a valid DVC experiment name"),
        (["--name", "a/b"], "argument --name: 'a/b' is not a valid DVC experiment name"),
        (["--deployment", "nightly"], "argument --deployment: 'nightly': write FLOW/DEPLOYMENT"),
    ],
)
def test_replicas_name_and_deployment_are_usage_errors(args, line, capsys):
    from flows.sweep import main

    with pytest.raises(SystemExit) as stop:
        main(["--grid", "pretrain.lr=0.1", *args])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith(
        "(python -m flows.sweep); see python -m flows.sweep --help\n"
    )
    assert err.startswith(f"error: {line}")


@pytest.mark.parametrize("timeout", [0, -1, float("nan")])
def test_the_timeout_must_be_positive(timeout):
    from flows.sweep import sweep_flow
    from simclr.errors import PipelineError

    with pytest.raises(PipelineError, match="timeout .*: allowed: seconds > 0"):
        sweep_flow.fn({"pretrain.lr": [0.1]}, [0], timeout=timeout)


def test_a_dead_api_is_the_stages_one_line_before_anything_is_submitted():
    r = sweep("--grid", "pretrain.lr=0.1")
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, r.stderr
    assert r.stderr.startswith(f"error: the Prefect API at {DEAD_API} does not answer")


def test_a_deployment_not_registered_is_one_line_naming_it(prefect_api):
    r = sweep(
        "--grid", "pretrain.lr=0.1", "--deployment", "simclr-pipeline/absent", api=prefect_api
    )
    assert r.returncode == 2, r.stderr
    assert r.stderr.splitlines() == [
        f"error: deployment simclr-pipeline/absent is not registered on the Prefect server at "
        f"{prefect_api}; register it from the repository root with `prefect --no-prompt deploy "
        "--name absent` (prefect.yaml), or pass --deployment of one that is"
    ]

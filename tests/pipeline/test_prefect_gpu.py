"""Placing the pipeline on GPU machines (docs/gpu.md "Work pools on GPU machines"), against the
session's real
Prefect server: the process pool `simclr-gpu` with its concurrency limit and the `nightly-gpu`
deployment of prefect.yaml, and the Kubernetes base job template in deploy/ that requests
`nvidia.com/gpu`. Nothing here starts a worker or runs the pipeline."""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid

import pytest
import yaml
from helpers import BIN, ROOT, copy_code, init_repo, repo_env, runner
from helpers import api as _api

from flows.pipeline import override_args

GPU_POOL = "simclr-gpu"  # as prefect.yaml
K8S_POOL = "simclr-k8s-gpu"
TEMPLATE = ROOT / "deploy" / "k8s-gpu-job-template.json"
GPUS = 2


@pytest.fixture(scope="module")
def gpu_deployed(tmp_path_factory, prefect_api):
    path = copy_code(tmp_path_factory.mktemp("gpu-deploy"))
    shutil.copy(ROOT / "prefect.yaml", path)
    run = runner(path, repo_env(PREFECT_API_URL=prefect_api, PWD=str(path)))
    run("prefect", "work-pool", "create", GPU_POOL, "--type", "process")
    run("prefect", "work-pool", "set-concurrency-limit", GPU_POOL, str(GPUS))
    run("prefect", "--no-prompt", "deploy", "--name", "nightly-gpu")
    return {
        "deployment": _api(prefect_api, "/deployments/name/simclr-pipeline/nightly-gpu"),
        "pool": _api(prefect_api, f"/work_pools/{GPU_POOL}"),
        "run": run,
        "path": str(path),
    }


def test_prefect_yaml_declares_the_cpu_and_the_gpu_deployment():
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    by_name = {d["name"]: d for d in spec["deployments"]}
    assert set(by_name) == {"nightly", "nightly-gpu"}
    assert by_name["nightly"]["work_pool"]["name"] == "simclr"
    assert by_name["nightly-gpu"]["work_pool"]["name"] == GPU_POOL
    assert by_name["nightly"]["entrypoint"] == by_name["nightly-gpu"]["entrypoint"]


def test_gpu_deployment_is_on_the_gpu_pool_with_cuda_pretraining(gpu_deployed):
    d = gpu_deployed["deployment"]
    assert d["work_pool_name"] == GPU_POOL
    assert d["entrypoint"] == "flows/pipeline.py:pipeline_flow"
    assert d["parameters"] == {"overrides": {"pretrain.device": "cuda"}, "experiment": None}
    assert "gpu" in d["tags"]
    [schedule] = d["schedules"]
    assert schedule["schedule"]["cron"] == "0 3 * * *" and schedule["active"]
    # The GPU pool, not the deployment, limits how many run at once.
    assert d["global_concurrency_limit"] is None
    # What the flow hands to `dvc exp run`:
    assert override_args(d["parameters"]["overrides"]) == ["-S", '++pretrain.device="cuda"']
    # Every worker of the pool runs in the checkout the deployment was made from.
    assert d["pull_steps"] == [
        {"prefect.deployments.steps.set_working_directory": {"directory": gpu_deployed["path"]}}
    ]


def test_gpu_pool_has_one_slot_per_gpu(gpu_deployed):
    pool = gpu_deployed["pool"]
    assert pool["type"] == "process" and pool["concurrency_limit"] == GPUS
    shown = gpu_deployed["run"]("prefect", "work-pool", "inspect", GPU_POOL).stdout
    assert f"concurrency_limit={GPUS}" in shown.replace(" ", ""), shown


def test_a_workers_gpu_reaches_its_runs_and_their_stages(monkeypatch):
    """A process worker started as `CUDA_VISIBLE_DEVICES=1 prefect worker start ...` runs its
    flow runs with its environment; the pipeline flow hands it on to `dvc exp run`, whose
    stages then see that GPU alone (as cuda:0)."""
    from prefect.client.schemas.objects import FlowRun
    from prefect.workers.process import ProcessJobConfiguration

    from flows.pipeline import _dvc_env

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    job = ProcessJobConfiguration()
    job.prepare_for_flow_run(FlowRun(flow_id=uuid.uuid4(), name="run"))
    assert job.env["CUDA_VISIBLE_DEVICES"] == "1"
    assert _dvc_env()["CUDA_VISIBLE_DEVICES"] == "1"


def test_experiments_in_one_checkout_run_at_the_same_time(tmp_path):
    """What lets one checkout serve every GPU worker: concurrent `dvc exp run --temp` (what the
    pipeline flow runs) each work in a copy, and DVC releases its repository lock while the
    experiment runs, so they overlap instead of failing or queueing."""
    run = runner(tmp_path, repo_env())
    (tmp_path / "params.yaml").write_text("x: 0\n")
    (tmp_path / "stage.py").write_text(
        "import json, time\n"
        "start = time.time()\n"
        "time.sleep(6)\n"
        "print(json.dumps({'start': start, 'end': time.time()}))\n"
    )
    stage = {"cmd": "python stage.py > span.json", "deps": ["stage.py"], "params": ["x"]}
    stage["metrics"] = [{"span.json": {"cache": False}}]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump({"stages": {"work": stage}}))
    init_repo(run)
    procs = [
        subprocess.Popen(
            [
                str(BIN / "dvc"),
                "--wait-for-lock",
                "exp",
                "run",
                "--temp",
                "-n",
                f"gpu{i}",
                "-S",
                f"x={i}",
            ],
            cwd=tmp_path,
            env=repo_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in (1, 2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    shown = json.loads(run("dvc", "exp", "show", "--json").stdout)
    spans = {
        e["name"]: e["revs"][0]["data"]["metrics"]["span.json"]["data"]
        for commit in shown
        for e in commit.get("experiments") or []
    }
    assert set(spans) == {"gpu1", "gpu2"}, shown
    first, second = spans.values()
    assert first["start"] < second["end"] and second["start"] < first["end"], (
        f"the experiments ran one after the other: {spans}"
    )


def _placeholders(obj) -> set[str]:
    from prefect.utilities.templating import find_placeholders

    return {p.name for p in find_placeholders(json.dumps(obj))}


def test_k8s_template_requests_gpus_and_declares_every_variable_it_uses():
    template = json.loads(TEMPLATE.read_text())
    assert set(template) == {"job_configuration", "variables"}
    variables = template["variables"]["properties"]
    used = _placeholders(template["job_configuration"])
    assert used <= set(variables), f"undeclared: {used - set(variables)}"
    assert {"gpus", "image", "env", "command", "namespace"} <= used
    manifest = template["job_configuration"]["job_manifest"]
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    assert container["name"] == "prefect-job"  # the Kubernetes worker requires this name
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpus }}"
    assert variables["gpus"]["type"] == "integer" and variables["gpus"]["default"] == 1


def test_k8s_template_renders_a_job_that_requests_the_gpus():
    """The job a Kubernetes worker would submit for a deployment asking for 2 GPUs: the
    template's defaults and the deployment's job variables put into its placeholders, as
    Prefect's workers do."""
    from prefect.utilities.templating import apply_values

    template = json.loads(TEMPLATE.read_text())
    properties = template["variables"]["properties"]
    values = {k: v["default"] for k, v in properties.items() if "default" in v}
    values |= {"image": "registry.example.com/simclr:1", "gpus": 2, "name": "run-1"}
    values |= {"command": "python -m prefect.engine", "env": {"A": "1"}, "labels": {}}
    config = apply_values(template["job_configuration"], values)
    job = config["job_manifest"]
    assert not _placeholders(job), "unfilled placeholders"
    pod = job["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"] == {"nvidia.com/gpu": 2}
    assert container["image"] == "registry.example.com/simclr:1"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in (
        pod["tolerations"]
    )
    [shm] = pod["volumes"]
    assert shm["emptyDir"]["medium"] == "Memory" and container["volumeMounts"][0]["name"] == "dshm"
    assert job["kind"] == "Job" and job["spec"]["backoffLimit"] == 0
    assert job["metadata"]["generateName"] == "run-1-"
    # The parts the Kubernetes worker checks before submitting a job.
    assert pod["restartPolicy"] == "Never" and pod["parallelism"] == pod["completions"] == 1


def test_server_accepts_the_k8s_pool_with_its_gpu_limit(prefect_api, tmp_path):
    run = runner(tmp_path, repo_env(PREFECT_API_URL=prefect_api))
    template = str(TEMPLATE)
    run(
        "prefect",
        "work-pool",
        "create",
        K8S_POOL,
        "--type",
        "kubernetes",
        "--base-job-template",
        template,
    )
    run("prefect", "work-pool", "set-concurrency-limit", K8S_POOL, "4")
    pool = _api(prefect_api, f"/work_pools/{K8S_POOL}")
    assert pool["type"] == "kubernetes" and pool["concurrency_limit"] == 4
    assert pool["base_job_template"] == json.loads(TEMPLATE.read_text())
    # The server checks what the test above checks: a variable used but not declared is refused.
    broken = json.loads(TEMPLATE.read_text())
    del broken["variables"]["properties"]["gpus"]
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    r = run(
        "prefect",
        "work-pool",
        "create",
        "broken",
        "-t",
        "kubernetes",
        "--base-job-template",
        str(tmp_path / "broken.json"),
        check=False,
    )
    assert r.returncode != 0 and "gpus" in r.stdout + r.stderr, r.stdout + r.stderr

"""A grid of params on the work pool: `python -m flows.sweep --grid pretrain.temperature=0.1,0.5
[--grid key=v1,v2 ...] [--replicas 0,1,2] [--deployment simclr-pipeline/nightly] [--name NAME]`.

Every combination of the grid's values, times every pretraining replica, is one experiment:
one flow run of the pipeline's deployment (`dvc exp run --temp` with those overrides and
`replicas=[r]`), so a GPU pool with one worker per GPU runs one experiment per GPU and the CPU
deployment (limit 1) runs them one after the other. The flow waits for all of them, then
publishes the comparison (replicas of one grid point pooled, every point against the first) as
the `sweep-<name>` artifact, and fails naming the runs that did not complete.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from ruamel.yaml import YAML

import flows  # noqa: F401  (sets the analytics opt-outs before prefect runs anything)
from flows.cli import PARAMS, boundary, check_api
from flows.compare import comparisons
from flows.errors import ArgumentParser
from simclr.config import load_params
from simclr.errors import PipelineError
from tasks.artifacts import artifact_key, publish
from tasks.comparison import listing_markdown
from tasks.dotted import flatten
from tasks.experiments import dvc_exp_show, entries, git, group_entries

DEPLOYMENT = "simclr-pipeline/nightly"  # prefect.yaml; simclr-pipeline/nightly-gpu on GPUs
POLL_SECONDS = 5


def grid_points(grid: dict[str, list]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def parse_grid(specs: list[str]) -> dict[str, list]:
    """`key=v1,v2` specs (values read as YAML: numbers, true, strings) as {key: [v1, v2]}."""
    grid = {}
    for spec in specs:
        key, sep, values = spec.partition("=")
        if not sep or not key or not values:
            raise PipelineError(f"--grid {spec!r}: write key=value1,value2 (a params.yaml key)")
        grid[key] = [YAML(typ="safe", pure=True).load(v) for v in values.split(",")]
    return grid


@task(name="submit-experiment", cache_policy=NONE)
def submit(deployment: str, overrides: dict, experiment: str, tags: list[str]) -> str:
    """One flow run of the pipeline's deployment; its id (not waited for here)."""
    from prefect.deployments import run_deployment

    run = run_deployment(
        deployment,
        parameters={"overrides": overrides, "experiment": experiment},
        timeout=0,
        tags=tags,
    )
    return str(run.id)


def wait_for(run_ids: dict[str, str], timeout: float) -> dict[str, str]:
    """Experiment -> the final state type of its flow run, polled until every one is final."""
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while True:
            states = {name: client.read_flow_run(i).state for name, i in run_ids.items()}
            if all(s is not None and s.is_final() for s in states.values()):
                return {name: s.type.value for name, s in states.items()}
            if time.monotonic() > deadline:
                waiting = [n for n, s in states.items() if s is None or not s.is_final()]
                raise PipelineError(f"sweep: runs not finished after {timeout:.0f} s: {waiting}")
            time.sleep(POLL_SECONDS)


def sweep_markdown(name: str, repo: Path, experiments: list[str]) -> tuple[str, list[dict]]:
    """The comparison of the sweep's experiments: the listing of its grid points (replicas
    pooled), then every point against the first."""
    ours = [e for e in entries(dvc_exp_show(repo)) if e.name in experiments]
    ours.sort(key=lambda e: experiments.index(e.name))  # grid order, not dvc's newest first
    groups = group_entries(ours, repo)
    if not groups:
        return f"# Sweep `{name}`\n\nNo experiment of the sweep has results.", []
    body, rows = comparisons(groups, groups[0])
    text = f"# Sweep `{name}`\n\n{listing_markdown(groups)}\n\n{body}\n"
    return text, rows


@flow(name="simclr-sweep")
def sweep_flow(
    grid: dict[str, list],
    replicas: list[int] | None = None,
    deployment: str = DEPLOYMENT,
    name: str = "sweep",
    repo: str = ".",
    timeout: float = 48 * 3600,
) -> list[dict]:
    """Run the grid x replicas as experiments of `deployment` and compare them.

    grid: params.yaml keys -> values to try; replicas: pretraining replicas of every point
    (default: params.yaml's); name: prefix of the experiments' names; repo: the repository the
    deployment runs in (where the experiments are read back).
    """
    if not timeout > 0:  # NaN too: it would wait for nothing, or forever
        raise PipelineError(f"sweep: timeout {timeout}: allowed: seconds > 0")
    log = get_run_logger()
    root = Path(repo).resolve()
    replicas = list(replicas) if replicas else list(load_params(root / "params.yaml").replicas)
    submitted = {}
    for i, point in enumerate(grid_points(grid)):
        for r in replicas:
            experiment = f"{name}-{i}-r{r}"
            overrides = {**point, "replicas": [r]}
            submitted[experiment] = submit(deployment, overrides, experiment, [f"sweep:{name}"])
            log.info("submitted %s: %s", experiment, overrides)
    states = wait_for(submitted, timeout)
    markdown, rows = sweep_markdown(name, root, list(submitted))
    done = sum(s == "COMPLETED" for s in states.values())
    publish(artifact_key("sweep", name), f"{done} of {len(states)} experiments", markdown, rows)
    failed = {n: s for n, s in states.items() if s != "COMPLETED"}
    if failed:
        raise PipelineError(f"sweep {name}: {len(failed)} of {len(states)} runs failed: {failed}")
    return rows


def _replicas(text: str) -> list[int]:
    """--replicas: comma-separated integers, by the schema's rules for params.yaml `replicas`
    (>= 0, no repeats); argparse turns a refusal into its one-line usage error."""
    from pydantic import TypeAdapter, ValidationError

    from simclr.config import Replicas

    try:
        return list(TypeAdapter(Replicas).validate_python([int(r) for r in text.split(",")]))
    except (ValueError, ValidationError):
        raise argparse.ArgumentTypeError(
            f"{text!r}: write distinct replicas >= 0, e.g. 0,1,2"
        ) from None


def _experiment_prefix(text: str) -> str:
    """--name: DVC keeps an experiment as a Git ref, refs/exps/.../<name>, and refuses a name
    that `git check-ref-format` refuses or that holds '/'; checked on the first experiment's
    name before anything is submitted (each run would fail on it)."""
    first = f"{text}-0-r0"
    if "/" in text or git(Path.cwd(), "check-ref-format", f"refs/exps/{first}").returncode:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a valid DVC experiment name; use letters, digits, '-', '_' and "
            "'.' (no spaces, '/', '..', '~', '^', ':', '?', '*', '[' or '\\')"
        )
    return text


def _deployment(text: str) -> str:
    flow_name, sep, name = text.partition("/")
    if not (flow_name and sep and name) or "/" in name:
        raise argparse.ArgumentTypeError(f"{text!r}: write FLOW/DEPLOYMENT, e.g. {DEPLOYMENT}")
    return text


def check_experiments(repo: Path, grid: dict[str, list], replicas: list[int] | None) -> list:
    """Every grid point's params (params.yaml with its overrides and the replicas, as `dvc exp
    run -S` sets them) checked by the schema before anything is submitted: a misspelt key or a
    bad value is one line naming it, not a failed run per experiment. Returns the replicas
    (default: params.yaml's)."""
    replicas = replicas or list(load_params(repo / PARAMS).replicas)
    for point in grid_points(grid):
        try:
            load_params(repo / PARAMS, {**flatten(point), "replicas": replicas})
        except PipelineError as e:
            spec = ", ".join(f"{k}={v}" for k, v in point.items())
            raise PipelineError(f"--grid {spec}: {e}") from None
    return replicas


def check_server(deployment: str) -> None:
    """The Prefect server answers (the stages' check) and has `deployment`, before anything is
    submitted: otherwise the first submission fails with Prefect's traceback."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:  # a temporary server would have no deployment, nor workers
        raise PipelineError(
            "PREFECT_API_URL is not set (the sweep runs on a server's work pool); set it to the "
            "server's API, e.g. http://127.0.0.1:4200/api"
        )
    check_api(otherwise="or point PREFECT_API_URL at the server that has the deployment")
    with get_client(sync_client=True) as client:
        try:
            client.read_deployment_by_name(deployment)
        except ObjectNotFound:
            name = deployment.partition("/")[2]
            raise PipelineError(
                f"deployment {deployment} is not registered on the Prefect server at {url}; "
                f"register it from the repository root with `prefect --no-prompt deploy --name "
                f"{name}` (prefect.yaml), or pass --deployment of one that is"
            ) from None


@boundary()
def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m flows.sweep", description=__doc__)
    parser.add_argument("--grid", action="append", required=True, help="key=value1,value2")
    parser.add_argument("--replicas", type=_replicas, help="e.g. 0,1,2 (default: params.yaml's)")
    parser.add_argument("--deployment", default=DEPLOYMENT, type=_deployment)
    parser.add_argument(
        "--name", default="sweep", type=_experiment_prefix, help="prefix of the experiments' names"
    )
    parser.add_argument("--repo", default=".", help="where the deployment runs (default: here)")
    args = parser.parse_args(argv)
    grid = parse_grid(args.grid)
    # Everything a user can get wrong, checked before the first run is submitted.
    replicas = check_experiments(Path(args.repo), grid, args.replicas)
    check_server(args.deployment)
    sweep_flow(grid, replicas, args.deployment, args.name, args.repo)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The scheduled end-to-end flow: `dvc exp run` in the repository with parameter overrides, so
that DVC stays the one DAG and cache. DVC's output streams into the run's logs; a failing
stage fails the run with DVC's error; the comparison of all experiments is then published as a
table artifact.

The experiment runs in a temporary copy of the workspace (`dvc exp run --temp`): a scheduled
run never leaves its overrides in the user's params.yaml, nor half-written outputs in the
user's checkout. Runs of the deployment are serialised by its concurrency limit (prefect.yaml).
"""

from __future__ import annotations

import errno
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger, task
from prefect.cache_policies import NONE
from prefect.runtime import flow_run

import flows  # noqa: F401  (sets the analytics opt-outs before prefect runs anything)
from flows.cli import boundary, prefect_api, run_tags
from simclr.errors import PipelineError
from simclr.processes import run_streaming
from tasks.artifacts import artifact_key, publish
from tasks.comparison import listing_markdown, listing_rows
from tasks.dotted import flatten
from tasks.experiments import dvc_exp_show, entries, group_entries
from tasks.retries import TRANSIENT

DVC_BUSY = "Unable to acquire lock"


def _hydra_value(value: Any) -> str:
    """A value in the override grammar DVC reads (Hydra's): strings double-quoted (a backslash
    is only special before a quote or at the end), lists bracketed, non-finite floats by name."""
    if isinstance(value, list | tuple):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, str):
        escaped = re.sub(r'(\\*)("|$)', lambda m: m[1] * 2 + ('\\"' if m[2] else ""), value)
        return f'"{escaped}"'
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return json.dumps(value)  # numbers, true/false, null


def override_args(overrides: dict[str, Any]) -> list[str]:
    """`-S ++key=value` for each override (nested mappings become dotted keys); `++` sets a
    key whether or not params.yaml has it."""
    args = []
    for key, value in flatten(overrides).items():
        args += ["-S", f"++{key}={_hydra_value(value)}"]
    return args


def _dvc_env() -> dict[str, str]:
    env = dict(os.environ)
    # The stages run as `python -m flows.<stage>`: this interpreter's, wherever the worker is.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    # Stage flows are runs of their own, not a re-entry into this one.
    for key in ("PREFECT__FLOW_RUN_ID", "PREFECT__TASK_RUN_ID"):
        env.pop(key, None)
    return env


@task(name="dvc-exp-run", cache_policy=NONE, **TRANSIENT)
def dvc_exp_run(repo: Path, overrides: dict[str, Any], name: str) -> str:
    log = get_run_logger()
    # Runs at once (the GPU pool) meet DVC's repository lock while one is set up or recorded.
    cmd = [sys.executable, "-m", "dvc", "--wait-for-lock", "exp", "run", "--temp", "-n", name]
    cmd += override_args(overrides)
    log.info("in %s: %s", repo, " ".join(cmd[2:]))
    rc, tail = run_streaming(cmd, log.info, cwd=repo, env=_dvc_env())
    if rc == 0:
        return name
    text = "\n".join(tail)
    if DVC_BUSY in text:  # another DVC process holds the repository: transient, retried
        raise BlockingIOError(errno.EAGAIN, f"{repo}: DVC repository busy ({DVC_BUSY})")
    errors = [ln for ln in tail if ln.startswith(("ERROR", "error:"))]
    raise PipelineError(f"dvc exp run failed (exit {rc}): " + " | ".join(errors or tail[-3:]))


@task(name="compare-experiments", cache_policy=NONE, **TRANSIENT)
def publish_experiments(repo: Path, name: str) -> list[dict]:
    """Every configuration (replicas pooled) as the `experiments-metrics` table, and the
    listing in Markdown with the configuration that holds experiment `name`."""
    groups = group_entries(entries(dvc_exp_show(repo)), repo)
    rows = listing_rows(groups)
    ours = next((g.label for g in groups if name in g.names), None)
    lines = [
        f"# Experiment `{name}`",
        "",
        f"In configuration {ours!r}." if ours else "No results of it in `dvc exp show`.",
        "",
        listing_markdown(groups),
    ]
    publish(artifact_key("experiments"), f"{len(rows)} configurations", "\n".join(lines), rows)
    return rows


def _tag_this_run(tags: list[str]) -> None:
    """Add `tags` to the running flow run (a deployment's run gets its tags at creation)."""
    from prefect.client.orchestration import get_client

    if not flow_run.id:
        return
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(flow_run.id)
        client.update_flow_run(flow_run.id, tags=sorted(set(run.tags) | set(tags)))


@flow(name="simclr-pipeline")
def pipeline_flow(
    overrides: dict[str, Any] | None = None,
    experiment: str | None = None,
    repo: str = ".",
) -> list[dict]:
    """Run the whole DVC pipeline as an experiment and compare it with all the others.

    overrides: params.yaml keys to set, e.g. {"pretrain.epochs": 100}; experiment: its name
    (default: this flow run's name); repo: the repository (default: the working directory).
    """
    root = Path(repo).resolve()
    name = experiment or flow_run.name or "scheduled"
    _tag_this_run([*run_tags(), f"exp:{name}"])
    dvc_exp_run(root, overrides or {}, name)
    return publish_experiments(root, name)


if __name__ == "__main__":
    with boundary(), prefect_api():
        pipeline_flow()

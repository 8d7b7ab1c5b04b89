"""Experiments as people compare them: `dvc exp show --json` read into one entry per commit or
experiment (its params and its headline metrics), each metric's value in every pretraining
replica read from the run's reports/summary.json (in Git at the experiment's commit), and the
entries grouped into configurations: experiments whose params differ only in `replicas` are
replicas of one configuration, pooled, not unrelated rows."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML

from simclr.errors import PipelineError
from tasks.dotted import flatten
from tasks.paths import SUMMARY

PARAMS_FILE = "params.yaml"
REPLICAS_KEY = "replicas"  # the one param that tells replicas of a configuration apart
UNKNOWN_REPLICA = "?"  # a run whose summary.json is missing: its means, one value each


@dataclass(frozen=True)
class Entry:
    """One commit, experiment or the workspace, as `dvc exp show` lists it."""

    name: str
    rev: str  # "workspace" for uncommitted results
    baseline: str  # the commit it is an experiment on (its own rev for a commit)
    params: dict  # dotted key -> value
    metrics: dict  # headline metric -> mean (reports/metrics.json, flattened)


@dataclass
class Group:
    """Entries with the same params (but `replicas`) on the same commit: one configuration."""

    names: list[str]
    revs: list[str]
    baseline: str
    params: dict
    values: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> replica -> v

    @property
    def replicas(self) -> list[str]:
        return sorted({r for v in self.values.values() for r in v}, key=_replica_order)

    @property
    def label(self) -> str:
        return ", ".join(sorted(self.names))


def _replica_order(r: str):
    return (0, int(r)) if r.isdigit() else (1, r)


def dvc_exp_show(repo: Path, all_commits: bool = False) -> list[dict]:
    """`dvc exp show --json` in `repo`, parsed: HEAD and its experiments, or with
    `all_commits` every commit's."""
    cmd = [sys.executable, "-m", "dvc", "exp", "show", "--json"]
    cmd += ["--all-commits"] if all_commits else []
    r = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise PipelineError(f"dvc exp show failed in {repo}: {r.stderr.strip()[-500:]}")
    return json.loads(r.stdout)


def git(repo: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60)


def _flat_params(data: dict) -> dict:
    flat = {}
    for found in (data.get("params") or {}).values():
        flat.update(flatten(found.get("data") or {}))
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in flat.items()}


def _flat_metrics(data: dict) -> dict:
    out = {}
    for found in (data.get("metrics") or {}).values():
        out.update(
            {
                k: v
                for k, v in flatten(found.get("data") or {}).items()
                if isinstance(v, int | float)
            }
        )
    return out


def entries(exp_show: list[dict]) -> list[Entry]:
    """The workspace, every baseline commit and every experiment on it that has metrics."""
    found = []
    commits = [b for b in exp_show if b.get("rev") != "workspace"]
    head = commits[0]["rev"] if commits else ""
    for baseline in exp_show:
        if baseline.get("rev") == "workspace":
            name, rev, base = "workspace", "workspace", head
        else:
            name, rev = baseline.get("name") or baseline["rev"][:7], baseline["rev"]
            base = rev
        runs = [(name, rev, baseline.get("data") or {})]
        for exp in baseline.get("experiments") or []:
            for r in exp.get("revs") or []:
                runs.append((r.get("name") or r["rev"][:7], r["rev"], r.get("data") or {}))
        for run_name, run_rev, data in runs:
            params, metrics = _flat_params(data), _flat_metrics(data)
            if metrics:  # not a run without results (or whose metrics DVC could not read)
                found.append(Entry(run_name, run_rev, base, params, metrics))
    return _without_unchanged_workspace(found, head)


def _without_unchanged_workspace(found: list[Entry], head: str) -> list[Entry]:
    """The workspace only where its params or results differ from those of HEAD and of every
    experiment on it: an unchanged workspace is HEAD, and after `dvc exp run` (which leaves the
    experiment's results in the workspace) it is that experiment, not a configuration of its
    own."""
    ours = [e for e in found if e.rev != "workspace" and e.baseline == head]
    return [
        e
        for e in found
        if not (
            e.rev == "workspace"
            and any((e.params, e.metrics) == (o.params, o.metrics) for o in ours)
        )
    ]


def summary_at(repo: Path, rev: str) -> dict | None:
    """reports/summary.json of a commit or experiment (from Git), or of the workspace; None
    where the run has none."""
    if rev == "workspace":
        path = repo / SUMMARY
        return json.loads(path.read_text()) if path.is_file() else None
    r = git(repo, "show", f"{rev}:{SUMMARY.as_posix()}")
    return json.loads(r.stdout) if r.returncode == 0 else None


def replica_values(entry: Entry, summary: dict | None) -> dict[str, dict[str, float]]:
    """Metric -> replica -> value: from the summary's headlines; without a summary, the metrics'
    means as one value of an unknown replica (so the noise cannot be told)."""
    if summary and summary.get("headline"):
        found = {k: dict(v["by_replica"]) for k, v in summary["headline"].items()}
    else:
        found = {k: {UNKNOWN_REPLICA: v} for k, v in entry.metrics.items()}
    return dict(sorted(found.items(), key=lambda kv: not kv[0].startswith("pretrain.")))


def params_from_yaml(text: str) -> dict:
    """params.yaml's text as the flat {dotted key: value} `dvc exp show` gives (lists as JSON),
    read with ruamel (YAML 1.2) as DVC reads it."""
    tree = YAML(typ="safe", pure=True).load(text) or {}
    return {k: json.dumps(v) if isinstance(v, list) else v for k, v in flatten(tree).items()}


def entry_at(repo: Path, rev: str, name: str) -> Entry | None:
    """A commit that `dvc exp show` did not list (e.g. an older one), read from Git: its params
    and headline metrics (from its summary.json); None if it has no summary."""
    summary = summary_at(repo, rev)
    shown = git(repo, "show", f"{rev}:{PARAMS_FILE}")
    if summary is None or shown.returncode != 0:
        return None
    params = params_from_yaml(shown.stdout)
    metrics = {k: v["mean"] for k, v in summary.get("headline", {}).items()}
    return Entry(name, rev, rev, params, metrics)


def config_key(entry: Entry) -> str:
    """What makes entries replicas of one configuration: the commit and every param but
    `replicas` (a changed workspace is a configuration of its own: its code may differ)."""
    params = {k: v for k, v in entry.params.items() if k != REPLICAS_KEY}
    where = "workspace" if entry.rev == "workspace" else entry.baseline
    return json.dumps([where, params], sort_keys=True, default=str)


def group_entries(found: list[Entry], repo: Path) -> list[Group]:
    """Entries grouped into configurations, in the order first seen; each metric's replica
    values pooled (a replica met twice, e.g. HEAD and an unchanged workspace, counts once)."""
    groups: dict[str, Group] = {}
    for e in found:
        g = groups.setdefault(
            config_key(e), Group([], [], e.baseline, {k: v for k, v in e.params.items()})
        )
        g.names.append(e.name)
        g.revs.append(e.rev)
        for metric, by_replica in replica_values(e, summary_at(repo, e.rev)).items():
            pooled = g.values.setdefault(metric, {})
            for r, v in by_replica.items():
                pooled.setdefault(r, v)
    return list(groups.values())


def find_group(groups: list[Group], name: str, repo: Path) -> Group:
    """The group of the experiment, commit or revision `name` (a name, a rev prefix, or
    anything `git rev-parse` resolves, e.g. HEAD~1, which is read from Git when `dvc exp show`
    did not list it)."""
    for g in groups:
        if name in g.names or (len(name) >= 4 and any(r.startswith(name) for r in g.revs)):
            return g
    resolved = git(repo, "rev-parse", "--verify", "--quiet", f"{name}^{{commit}}").stdout.strip()
    for g in groups:
        if resolved and resolved in g.revs:
            return g
    entry = entry_at(repo, resolved, name) if resolved else None
    if entry is None:
        known = ", ".join(n for g in groups for n in g.names)
        raise PipelineError(
            f"--baseline {name}: no such experiment or revision with results; known: {known}"
        )
    (group,) = group_entries([entry], repo)
    groups.append(group)
    return group


def varying_params(groups: list[Group]) -> list[str]:
    """The params (but `replicas`) whose values differ between the groups."""
    keys = sorted({k for g in groups for k in g.params if k != REPLICAS_KEY})
    return [k for k in keys if len({json.dumps(g.params.get(k), default=str) for g in groups}) > 1]

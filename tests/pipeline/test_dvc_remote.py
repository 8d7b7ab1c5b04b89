"""Sharing results through a DVC remote (docs/experiments.md, "Sharing results through a DVC
remote"): the
real tiny pipeline is reproduced once in a Git + DVC repository, pushed to a local-directory
remote (`git commit` + `dvc push`), cloned into a fresh directory and pulled there
(`git clone` + `dvc pull`); the clone is then up to date, `dvc repro` there runs no stage and
touches no output, and the checkpoint, data and metrics are the originals byte for byte."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from helpers import ROOT, TINY_PARAMS, copy_code, init_repo, repo_env, runner

pytestmark = pytest.mark.e2e

# The tiny pipeline made cheaper still: what is shared does not depend on how long it trained.
CHEAP_PARAMS = (
    TINY_PARAMS.replace("  epochs: 2\n", "  epochs: 1\n")
    .replace("replicas: [0, 1]", "replicas: [0]")
    .replace("fractions: [0.1, 1.0]", "fractions: [1.0]")
    .replace("seeds: 2", "seeds: 1")
    .replace("finetune: {epochs: 1,", "finetune: {epochs: 0,")
)
# Outputs with a DVC cache: in the remote, not in Git.
CACHED = ("data/prepared/digits", "data/prepared/faces", "models/simclr-0.pt")
CACHED += ("reports/validation/docs",)
# Outputs with `cache: false` (metrics, small reports): in Git, not in the remote.
IN_GIT = (
    "reports/metrics.json",
    "reports/summary.json",
    "reports/pretrain/0/metrics.json",
    "reports/evaluate/0/details.json",
    "reports/transfer/faces/0/details.json",
    "reports/validation/results/digits.json",
    "reports/report.md",
)


def files(root: Path, names=("data", "models", "reports")) -> dict[str, Path]:
    return {
        str(p.relative_to(root)): p
        for name in names
        for p in sorted((root / name).rglob("*"))
        if p.is_file() and p.name != ".gitignore"
    }


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def shared(tmp_path_factory, prefect_api):
    base = tmp_path_factory.mktemp("dvc-remote")
    origin, clone, remote = base / "origin", base / "clone", base / "remote"
    origin.mkdir()
    copy_code(origin)
    (origin / "dvc.yaml").write_bytes((ROOT / "dvc.yaml").read_bytes())
    (origin / "params.yaml").write_text(CHEAP_PARAMS)
    env = repo_env(PREFECT_API_URL=prefect_api)
    run = runner(origin, env)
    init_repo(run)
    run("dvc", "repro")
    # The recipe (README): a default remote in .dvc/config, results committed, data pushed.
    run("dvc", "remote", "add", "-d", "storage", str(remote))
    run("git", "add", "-A")
    run("git", "commit", "-qm", "results, and the DVC remote")
    pushed = run("dvc", "push")
    runner(base, env)("git", "clone", "-q", str(origin), str(clone))
    in_clone = runner(clone, env)
    before_pull = {
        "files": set(files(clone)),
        "status": in_clone("dvc", "status").stdout,
    }
    pulled = in_clone("dvc", "pull")
    return {
        "origin": origin,
        "clone": clone,
        "remote": remote,
        "run": in_clone,
        "pushed": pushed,
        "pulled": pulled,
        "before_pull": before_pull,
    }


def test_cached_outputs_travel_through_the_remote_and_metrics_through_git(shared):
    assert (shared["remote"] / "files" / "md5").is_dir()  # DVC 3's remote layout
    assert "pushed" in shared["pushed"].stdout
    before = shared["before_pull"]
    # A bare clone has the `cache: false` outputs (committed) but none of the cached ones...
    assert set(IN_GIT) <= before["files"]
    assert not any(f == c or f.startswith(c + "/") for f in before["files"] for c in CACHED)
    assert "deleted" in before["status"] and "models/simclr-0.pt" in before["status"]
    # ...which `dvc pull` brings from the remote (the clone's own cache started empty).
    for name in CACHED:
        assert (shared["clone"] / name).exists(), name
    assert "added" in shared["pulled"].stdout


def test_pulled_clone_is_up_to_date_and_in_sync_with_the_remote(shared):
    run = shared["run"]
    assert "Data and pipelines are up to date" in run("dvc", "status").stdout
    assert "Cache and remote 'storage' are in sync" in run("dvc", "status", "--cloud").stdout


def test_repro_in_the_pulled_clone_runs_no_stage_and_touches_no_output(shared):
    clone = shared["clone"]
    before = {name: p.stat().st_mtime_ns for name, p in files(clone).items()}
    lock = (clone / "dvc.lock").read_bytes()
    r = shared["run"]("dvc", "repro")
    assert "Running stage" not in r.stdout, r.stdout
    assert "Data and pipelines are up to date" in r.stdout, r.stdout
    assert {name: p.stat().st_mtime_ns for name, p in files(clone).items()} == before
    assert (clone / "dvc.lock").read_bytes() == lock
    assert shared["run"]("git", "status", "--porcelain").stdout == ""


def test_pulled_checkpoint_data_and_metrics_are_the_originals_byte_for_byte(shared):
    origin, clone = files(shared["origin"]), files(shared["clone"])
    assert set(clone) == set(origin)
    assert {"models/simclr-0.pt", *IN_GIT} <= set(clone)
    assert {n: digest(p) for n, p in clone.items()} == {n: digest(p) for n, p in origin.items()}

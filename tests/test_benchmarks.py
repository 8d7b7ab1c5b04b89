"""benchmarks/ is a package: each benchmark a module run as `python -m benchmarks.<kind>.<name>`
(named in benchmarks/README.md), no sys.path edits, and every result a JSON line that says
which commit and which machine measured it."""

from __future__ import annotations

import json
import re

from helpers import ROOT

KINDS = ("cpu", "pipeline", "gpu")
HELPERS = {"__init__", "workspace"}  # modules of benchmarks/ that are not a benchmark
MACHINE = {"cpu", "cores", "torch", "device"}


def _benchmarks() -> list[str]:
    return sorted(
        f"benchmarks.{kind}.{p.stem}"
        for kind in KINDS
        for p in (ROOT / "benchmarks" / kind).glob("*.py")
        if p.stem not in HELPERS
    )


def test_no_sys_path_edits():
    files = [*(ROOT / "benchmarks").rglob("*.py"), *(ROOT / "tools").rglob("*.py")]
    edits = [str(p.relative_to(ROOT)) for p in files if "sys.path" in p.read_text()]
    assert not edits, f"run these as modules (python -m) instead of editing sys.path: {edits}"


def test_the_readme_shows_how_to_run_each_benchmark():
    readme = (ROOT / "benchmarks" / "README.md").read_text()
    missing = [m for m in _benchmarks() if f"python -m {m}" not in readme]
    assert not missing, f"benchmarks/README.md has no `python -m` line for {missing}"


def test_every_result_record_names_its_commit_and_machine():
    names = {  # the results files the benchmarks write
        m
        for path in (ROOT / "benchmarks").rglob("*.py")
        for m in re.findall(r'results_file\("(\w+)"\)', path.read_text())
    }
    files = sorted((ROOT / "benchmarks" / "results").glob("*"))
    assert files
    for path in files:
        assert path.suffix == ".jsonl" and path.stem in names, f"{path.name}: no benchmark's"
        for line in path.read_text().splitlines():
            record = json.loads(line)
            assert {"date", "command", "commit", "machine"} <= set(record), path.name
            assert re.fullmatch(r"[0-9a-f]{40}", record["commit"]), path.name
            assert set(record["machine"]) == MACHINE, path.name

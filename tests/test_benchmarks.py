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


def test_budget_grid_settings_are_dotted_changes_to_a_draft():
    from benchmarks.cpu.budget_grid import changes, setting_params, table
    from simclr.config import Params

    assert changes("b128+crop0.2") == {
        "pretrain.batch_size": 128,
        "pretrain.augment.crop_scale": (0.2, 1.0),
    }
    p = setting_params(Params(), "earlier+t0.2", seed=3)  # the later change wins
    assert p.seed == 3 and p.pretrain.batch_size == 256 and p.pretrain.temperature == 0.2
    assert p.pretrain.augment.crop_scale == (0.08, 1.0)
    rows = [
        {"budget_s": 600, "setting": s, "epochs": 3, "pretrain_seconds": 500, "knn": 0.5, **x}
        for s, x in [("a", {"linear_probe": 0.5}), ("b", {"linear_probe": 0.7})]
    ]
    rows.append({**rows[0], "linear_probe": 0.7})  # a's second seed: mean 0.6 ± 0.141
    shown = table(rows).splitlines()
    assert shown[2].startswith("| 600 | b | 1 |") and "0.700 |" in shown[2]
    assert shown[3].startswith("| 600 | a | 2 | 3/3 |") and "0.600 ± 0.141" in shown[3]


def test_evaluate_time_sets_params_keys_and_refuses_unknown_ones(tmp_path):
    import pytest

    from benchmarks.pipeline.evaluate_time import case_params

    base = tmp_path / "params.yaml"
    base.write_text((ROOT / "params.yaml").read_text().replace("seed: 0", "seed: 7"))
    sets = ["evaluate.finetune.max_steps=471", "pretrain.augment.crop_scale=[0.2, 1.0]"]
    p = case_params("generated", tmp_path, 5, base, sets)
    assert p["seed"] == 7 and p["evaluate"]["finetune"]["max_steps"] == 471
    assert p["pretrain"]["augment"]["crop_scale"] == [0.2, 1.0] and p["pretrain"]["epochs"] == 5
    with pytest.raises(SystemExit, match="evaluate.finetun.max_steps is not a params key"):
        case_params("generated", tmp_path, 5, base, ["evaluate.finetun.max_steps=1"])

"""benchmarks/common.py's save as a benchmark run calls it: one JSON line per run with the
commit (from a real `git`) and the machine."""

from __future__ import annotations

import json
import re

from helpers import ROOT

from benchmarks.common import results_file, save

MACHINE = {"cpu", "cores", "torch", "device"}


def test_save_appends_one_record_per_run(tmp_path, capsys):
    out = tmp_path / "results" / "x.jsonl"
    assert save(out, {"images_per_s": 1.5}) == 0
    assert save(out, {"images_per_s": 2.5}) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["images_per_s"] for r in records] == [1.5, 2.5]
    for r in records:
        assert re.fullmatch(r"[0-9a-f]{40}", r["commit"])
        assert r["machine"]["device"] == "cpu" and r["machine"]["cores"] >= 1
        assert set(r["machine"]) == MACHINE
    assert str(out) in capsys.readouterr().out
    assert results_file("x") == ROOT / "benchmarks" / "results" / "x.jsonl"

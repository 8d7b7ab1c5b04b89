"""Bad input through the real stage commands (issue 23): a params file that is no params, and
validate of an unprepared dataset (tests/test_hostile_input.py: the in-process cases)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import ROOT, copy_code, pythonpath

PARAMS_FILES = {
    "an alias bomb as a key": (
        "x: &a [x,x,x,x,x,x,x,x,x]\ndatasets:\n"
        "  ? [&b [*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]]\n"
        "  : {source: digits}\n",
        "params.yaml: cannot read a value (unhashable type: 'list'); fix it",
    ),
    "an alias bomb as a value": (
        "seed: [&a [x,x,x,x,x,x,x,x,x], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], "
        "&c [*b,*b,*b,*b,*b,*b,*b,*b,*b], &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]]\n",
        "params.yaml: seed = [[",
    ),
    "a 5000-digit integer": (
        "seed: " + "9" * 5000 + "\n",
        "params.yaml: cannot read a value (Exceeds the limit (4300 digits)",
    ),
    "nested 900 deep": (
        "seed: " + "[" * 900 + "]" * 900 + "\n",
        "params.yaml: seed is nested more than 10 levels deep",
    ),
    "Latin-1": ("seed: 0 # caf\xe9\n", "params.yaml: not UTF-8 text (byte 0xe9 at offset 13)"),
}


@pytest.mark.parametrize("case", PARAMS_FILES)
def test_a_params_file_that_is_no_params_is_one_short_line(tmp_path, case):
    text, line = PARAMS_FILES[case]
    (tmp_path / "params.yaml").write_bytes(text.encode("latin-1" if case == "Latin-1" else "utf-8"))
    r = subprocess.run(
        [sys.executable, "-m", "flows.check"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": pythonpath(ROOT)}, timeout=60,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    (error,) = r.stderr.splitlines()
    assert error.startswith(f"error: {line}") and len(error) < 400, error


@pytest.mark.e2e
def test_validate_of_an_unprepared_dataset_says_so_and_keeps_the_previous_data_docs(
    tmp_path, prefect_api
):
    copy_code(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "datasets: {pets: {source: digits}}\npretrain: {dataset: pets}\ntransfer: {datasets: []}\n"
    )
    docs = tmp_path / "reports" / "validation" / "docs"
    docs.mkdir(parents=True)
    (docs / "index.html").write_text("previous")
    r = subprocess.run(
        [sys.executable, "-m", "flows.validate"], cwd=tmp_path, capture_output=True, text=True,
        env={**os.environ, "PREFECT_API_URL": prefect_api}, timeout=300,
    )  # fmt: skip
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].startswith("error: data/prepared/pets"), r.stderr
    assert "re-run the prepare stage" in errors[0], errors
    assert (docs / "index.html").read_text() == "previous"

"""Every console subcommand and stage, run for real with hostile values for each of its
arguments and output paths: negative, zero, huge, NaN, infinite, fractional and non-numeric
numbers; an existing folder where a file goes, a file where a folder goes, a path below a
regular file, a read-only place; unknown names. Each must end in one line `error: ...` naming
what was wrong, exit status 2, no traceback, and leave the user's files (a sentinel folder and
file) byte for byte as they were, with nothing new beside them.

The cases run through the real entry points in one interpreter (tests/hostile_harness.py), as
root inside a mount namespace of its own where the read-only place is a read-only tmpfs; as
another user it is a folder without write permission."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT, TINY_PARAMS, pythonpath, tiny_checkpoint, tree_digest
from PIL import Image

NUMBERS = ["-1", "0", "1" + "0" * 30, "nan", "inf", "1.5", "many"]  # for an integer option
REPLICAS = ["-1", "99", "1" + "0" * 30, "nan", "1.5", "r0"]  # a stage's replica argument

# The paths a case may name: {keep} the user's folder, {file} the user's file, {under} a path
# below that file, {ro} a read-only folder, {missing} nothing; {photos}, {ckpt} good inputs.
OUTPUT_FILE = ["{keep}", "{under}/out.x", "{ro}/out.x"]  # where a file would be written
OUTPUT_DIR = ["{file}", "{keep}", "{under}/dir", "{ro}/dir"]  # where a folder would be written
INPUT_CHECKPOINT = ["{missing}", "{keep}", "{file}", "{huge_ckpt}"]


def _options(command: list[str], option: str, values: list[str]) -> list[tuple[list[str], str]]:
    return [([*command, option, v], v) for v in values]


def cases() -> list[tuple[list[str], str]]:
    """(command line, a text the error line must hold: the bad value or path)."""
    embed = ["simclr", "embed", "{photos}"]
    good_embed = [*embed, "{tmp}/h.parquet", "--checkpoint", "{ckpt}"]
    export = ["simclr", "export"]
    table = []
    for option in ("--batch-size", "--workers"):
        table += _options(good_embed, option, NUMBERS)
    table += _options(good_embed, "--device", ["tpu"]) + _options(good_embed, "--resize", ["zoom"])
    table += [([*good_embed, f"{option}={v}"], v) for option in ("--batch-size", "--workers")
              for v in ("-5", "1e3")]  # fmt: skip
    table += [([*embed, out, "--checkpoint", "{ckpt}"], out.split("/")[0]) for out in OUTPUT_FILE]
    table += _options([*embed, "{tmp}/h.parquet"], "--checkpoint", INPUT_CHECKPOINT)
    table += [(["simclr", "embed", src, "{tmp}/h.parquet", "--checkpoint", "{ckpt}"], src)
              for src in ("{missing}", "{file}")]  # fmt: skip
    table += [([*export, out, "--checkpoint", "{ckpt}"], out.split("/")[0]) for out in OUTPUT_DIR]
    table += _options([*export, "{tmp}/exported"], "--checkpoint", INPUT_CHECKPOINT)
    good_export = [*export, "{tmp}/exported", "--checkpoint", "{ckpt}"]
    table += _options(good_export, "--format", ["tflite"]) + _options(
        good_export, "--resize", ["zoom"]
    )
    for command in (["simclr", "compare"], ["python", "-m", "flows.reproduce"]):
        outputs = [*OUTPUT_FILE, "{tmp}/table.txt"]
        table += [([*command, "--output", out], out.split("/")[0]) for out in outputs]
        table += _options(command, "--repo", ["{missing}", "{file}"])
    table += _options(["simclr", "serve"], "--cron", ["99 99 * * *", "nan"])
    table += _options(["simclr", "serve"], "--name", ["a/b", " "])
    overrides = ['{"pretrain.epochz": 1}', '{"pretrain.lr": -1}', '{"pretrain.lr": NaN}', "[1]"]
    table += [(["simclr", "serve", "--overrides", o], o.split('"')[1] if '"' in o else o)
              for o in overrides]  # fmt: skip
    init = ["simclr", "init", "{photos}", "--output", "{tmp}/p.yaml"]
    table += _options(init, "--minutes", NUMBERS[:-2] + ["-5", "1e9"])
    table += [
        (["simclr", "init", d, "--output", "{tmp}/p.yaml"], d)
        for d in ("{missing}", "{file}", "{keep}")
    ]
    table += _options(init, "--test", ["{missing}", "{keep}"])
    outputs = [*OUTPUT_FILE, "{file}"]  # an existing file is kept without --force
    table += [(["simclr", "init", "{photos}", "--output", o], o.split("/")[0]) for o in outputs]
    sweep = ["python", "-m", "flows.sweep"]
    grids = ["pretrain.epochz=1", "pretrain.lr=-1,0.1", "pretrain.lr=.nan", "pretrain.epochs"]
    table += [([*sweep, "--grid", g], g.split("=")[0]) for g in grids]
    good_sweep = [*sweep, "--grid", "pretrain.lr=0.1"]
    table += [([*good_sweep, f"--replicas={r}"], r) for r in ("-1,0,0", "0,0", "many", "1.5")]
    grids = ["pretrain.batch_size=" + "1" + "0" * 30, "pretrain.epochs=0", "data.image_size=20000"]
    table += [([*sweep, "--grid", g], g.split("=")[0]) for g in grids]
    table += _options(good_sweep, "--name", ["a b/c"]) + _options(good_sweep, "--repo", ["{file}"])
    table += [(["python", "-m", f"flows.{stage}", r], r) for stage in ("pretrain", "evaluate")
              for r in REPLICAS]  # fmt: skip
    table += [(["python", "-m", "flows.prepare", d], d) for d in ("nope", "../digits")]
    table += [(["python", "-m", "flows.transfer", "nope"], "nope")]
    table += [(["python", "-m", "flows.transfer", "faces", r], r) for r in REPLICAS]
    table += [(["python", "-m", "flows.pretrain", "0", "1"], "2 arguments")]
    table += [(["python", "-m", "flows.prepare"], "0 arguments")]
    table += [(["python", "-m", "flows.reproduce", "--against", "nope", "--repo", "{missing}"],
               "{missing}")]  # fmt: skip
    return table


def _paths(tmp: Path) -> dict[str, str]:
    """The workspace: params.yaml of a tiny run, photos, a checkpoint, and the user's files."""
    (tmp / "params.yaml").write_text(TINY_PARAMS)
    for c in ("cat", "dog"):
        (tmp / "photos" / c).mkdir(parents=True)
        for i in range(2):
            Image.new("RGB", (12, 12), (40 * i, 90, 200)).save(tmp / "photos" / c / f"{i}.png")
    keep = tmp / "keep"
    (keep / "sub").mkdir(parents=True)
    (keep / "notes.txt").write_text("the user's")
    (keep / "sub" / "data.bin").write_bytes(bytes(range(256)))
    (tmp / "mine.md").write_text("the user's file")
    (tmp / "ro").mkdir()
    return {
        "tmp": str(tmp),
        "keep": str(keep),
        "file": str(tmp / "mine.md"),
        "under": str(tmp / "mine.md"),
        "ro": str(tmp / "ro"),
        "missing": str(tmp / "missing"),
        "photos": str(tmp / "photos"),
        "ckpt": str(tiny_checkpoint(tmp / "ckpt" / "simclr.pt", channels=3, image_size=8)),
        "huge_ckpt": str(_huge_checkpoint(tmp / "ckpt")),
    }


def _huge_checkpoint(folder: Path) -> Path:
    """A checkpoint whose sha256 seal is valid (anyone can recompute one) but whose image size
    would need 120 GB a batch: refused on load, before anything is allocated."""
    from simclr.checkpoint import load_state, save_state

    state = load_state(folder / "simclr.pt")
    return save_state({**state, "image_size": 200_000}, folder / "huge.pt")


MOUNT_RO = 'mount -t tmpfs -o ro none ro && exec "$@"'


def _read_only_place(tmp: Path) -> list[str] | None:
    """The command prefix that makes tmp/ro read-only for the harness: a read-only tmpfs in a
    mount namespace of its own as root, a folder without write permission otherwise; None where
    neither holds (root without mount rights: permissions do not bind root)."""
    if os.geteuid() != 0:
        (tmp / "ro").chmod(0o555)
        return []
    prefix = ["unshare", "-m", "sh", "-c", MOUNT_RO, "sh"]
    if shutil.which("unshare") and subprocess.run([*prefix, "true"], cwd=tmp).returncode == 0:
        return prefix
    return None


def _run_all(tmp: Path, table: list[list[str]], prefix: list[str]) -> list[dict]:
    """Every command line of `table` through the harness in `tmp`, behind `prefix`."""
    cases_file = tmp.parent / "cases.json"
    cases_file.write_text(json.dumps(table))
    harness = [sys.executable, str(ROOT / "tests" / "hostile_harness.py"), str(cases_file)]
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath(ROOT),
        "PREFECT_API_URL": "http://127.0.0.1:9/api",
    }
    command = [*prefix, *harness]
    r = subprocess.run(command, cwd=tmp, env=env, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout)


def _fill(text: str, paths: dict[str, str]) -> str:
    """`text` with each {name} of `paths` filled in (JSON's own braces left as they are)."""
    return re.sub(r"\{(\w+)\}", lambda m: paths.get(m.group(1), m.group(0)), text)


def _snapshot(tmp: Path) -> tuple[str, str, list[str]]:
    names = sorted(p.name for p in tmp.iterdir() if p.name != "ckpt")
    return tree_digest(tmp / "keep"), tree_digest(tmp / "mine.md"), names


def test_every_command_answers_hostile_arguments_in_one_line_and_touches_nothing(tmp_path):
    tmp = tmp_path / "work"
    tmp.mkdir()
    paths = _paths(tmp)
    table = [([_fill(part, paths) for part in argv], _fill(expect, paths))
             for argv, expect in cases()]  # fmt: skip
    prefix = _read_only_place(tmp)
    if prefix is None:  # the read-only cases cannot be made here; every other case still runs
        table = [(argv, expect) for argv, expect in table if not any("/ro/" in a for a in argv)]
        prefix = []
    before = _snapshot(tmp)
    results = _run_all(tmp, [argv for argv, _ in table], prefix)
    wrong = []
    for (argv, expect), got in zip(table, results, strict=True):
        lines = got["stderr"].splitlines()
        ok = (
            got["code"] == 2
            and got["escaped"] is None
            and len(lines) == 1
            and lines[0].startswith("error: ")
            and expect in lines[0]
        )
        if not ok:
            wrong.append(f"{' '.join(argv)}\n  -> {got['code']}: {got['stderr'][-600:]!r}")
    assert not wrong, f"{len(wrong)} of {len(table)} cases:\n" + "\n".join(wrong)
    assert _snapshot(tmp) == before


def test_the_table_covers_every_console_command_but_run_and_check():
    """run is `check` + dvc repro (tested end to end), and check takes no argument; every
    other command, and every stage that takes an argument, is in the table."""
    from flows.console import COMMANDS

    named = {argv[1] if argv[0] == "simclr" else argv[2] for argv, _ in cases()}
    assert set(COMMANDS) - {"run", "check"} <= named
    stages = {"flows.prepare", "flows.pretrain", "flows.evaluate", "flows.transfer"}
    assert stages | {"flows.sweep", "flows.reproduce"} <= named
    assert len(cases()) >= 90  # a floor: the table may grow, not silently shrink


def test_check_refuses_a_stray_argument_in_one_line(tmp_path, monkeypatch, capsys):
    from flows.console import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(TINY_PARAMS)
    with pytest.raises(SystemExit) as stop:
        main(["check", "extra"])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        "error: unrecognized arguments: extra (simclr check); see simclr check --help\n"
    )

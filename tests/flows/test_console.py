"""The `simclr` console script: every command listed and documented (what it reads and writes),
`--help` without importing torch or prefect, user errors in one line with exit status 2, and
`simclr run` as `make run`: params checked first, then `dvc repro` with the options given."""

from __future__ import annotations

import pytest

from flows.console import COMMANDS, main


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_says_what_it_reads_and_writes(name, capsys):
    with pytest.raises(SystemExit) as stop:
        main([name, "--help"])
    assert stop.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    assert text.startswith(f"usage: simclr {name}")
    if name in ("compare", "serve"):  # their modules' own documentation
        assert {"compare": "dvc exp show", "serve": "registers a deployment"}[name] in text
    else:
        assert "Reads" in text and ("writes" in text or "Writes" in text)


def test_an_unknown_command_is_one_line_and_exit_2(capsys):
    assert main(["pretrian"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: unknown command 'pretrian'; one of: init, check, run, compare")
    assert err.count("\n") == 1


@pytest.mark.parametrize(
    "option, value, allowed",
    [
        ("--workers", "-1", "-1: allowed: 1 to 256"),
        ("--workers", "0", "0: allowed: 1 to 256"),
        ("--workers", "100000", "100000: allowed: 1 to 256"),
        ("--batch-size", "0", "0: allowed: 1 to 65,536"),
        ("--batch-size", "nan", "'nan' is not an integer"),
    ],
)
def test_embed_refuses_bad_numbers_before_reading_the_checkpoint(
    option, value, allowed, tmp_path, capsys
):
    missing = tmp_path / "missing.pt"  # read first, its error would be another line
    argv = ["embed", str(tmp_path), str(tmp_path / "h.parquet"), "--checkpoint", str(missing)]
    with pytest.raises(SystemExit) as stop:
        main([*argv, option, value])
    assert stop.value.code == 2
    assert capsys.readouterr().err == (
        f"error: argument {option}: {allowed} (simclr embed); see simclr embed --help\n"
    )

"""The boundary every entry point runs inside (flows/errors.py, flows/cli.py): each kind of
error a user can cause is one line, `error: <what> (<where>); <what to do>`, and exit status 2;
Ctrl-C one line and 130; a bug of ours keeps its traceback (and the suite's guard sees it)."""

from __future__ import annotations

import ast
import errno
import io
from pathlib import Path

import numpy as np
import pytest
from helpers import ROOT

from flows.errors import EXIT_ERROR, EXIT_INTERRUPTED, INTERRUPTED, explain, user_errors
from simclr.errors import MAX_LINE, PipelineError, single_line


def raised(fn) -> BaseException:
    try:
        fn()
    except BaseException as e:  # the exception as an entry point would meet it
        return e
    raise AssertionError("nothing raised")


def throw(error: BaseException):
    raise error


def read_yaml_text(text: str):
    from ruamel.yaml import YAML

    return YAML(typ="safe", pure=True).load(text)


def truncated_npy(tmp_path: Path) -> Path:
    path = tmp_path / "images.npy"
    np.save(path, np.zeros((50, 8, 8, 1), np.uint8))
    path.write_bytes(path.read_bytes()[:300])
    return path


def draw_mathtext() -> None:
    from matplotlib.figure import Figure

    fig = Figure()
    fig.subplots().set_title("$\\foo$")
    fig.savefig(io.BytesIO(), format="png")


def deep(n: int):
    return deep(n + 1)


# (what raises, what the line must hold)
KNOWN = {
    "permission": (
        lambda tmp: throw(PermissionError(errno.EACCES, "Permission denied", "/data/x")),
        ["Permission denied (/data/x); check its permissions"],
    ),
    "disk full": (
        lambda tmp: throw(OSError(errno.ENOSPC, "No space left", "/out")),
        ["No space left (/out); free space there and re-run"],
    ),
    "not UTF-8": (
        lambda tmp: b"caf\xe9".decode(),
        ["text that is not UTF-8 (byte 0xe9 at offset 3)", "save the file as UTF-8"],
    ),
    "not encodable": (
        lambda tmp: "caf\udce9".encode(),
        ["cannot be written as UTF-8 ('\\udce9')", "rename the file or folder to UTF-8"],
    ),
    "YAML": (
        lambda tmp: read_yaml_text("a: [1, 2"),
        ["not valid YAML: ", "line 1", "fix the syntax"],
    ),
    "recursion": (lambda tmp: deep(0), ["input nested too deeply", "simplify it"]),
    "memory": (
        lambda tmp: np.empty(1 << 60, dtype=np.uint8),
        ["out of memory: Unable to allocate", "lower data.image_size"],
    ),
    "Pillow": (
        lambda tmp: __import__("PIL.Image").Image.open(io.BytesIO(b"not an image")),
        ["cannot identify image file"],
    ),
    "NumPy": (
        lambda tmp: np.load(truncated_npy(tmp), mmap_mode="r"),
        ["NumPy could not handle the data: ValueError: mmap length is greater than file size"],
    ),
    "matplotlib": (
        lambda tmp: draw_mathtext(),
        ["matplotlib could not handle the data: ValueError", "Unknown symbol: \\foo"],
    ),
}


@pytest.mark.parametrize("kind", KNOWN)
def test_each_kind_of_user_error_is_one_line_saying_what_where_and_what_to_do(tmp_path, kind):
    make, parts = KNOWN[kind]
    line = explain(raised(lambda: make(tmp_path)))
    assert line is not None and "\n" not in line and len(line) <= MAX_LINE, line
    for part in parts:
        assert part in line, line
    assert "; " in line  # what to do


def test_our_own_bugs_are_not_explained():
    assert explain(raised(lambda: {}["key"])) is None
    assert explain(raised(lambda: [].pop())) is None
    assert explain(raised(lambda: int("x"))) is None  # a ValueError of our code, not a library's


def test_a_message_is_cut_to_a_few_hundred_characters_on_one_line():
    huge = PipelineError("params.yaml: datasets." + "x" * 10**6 + "\nsecond line; fix it")
    line = explain(huge)
    assert len(line) <= MAX_LINE and "\n" not in line and line.endswith("second line; fix it")
    assert single_line("a\nb\tc\x1b") == "a\\nb\\tc\\x1b"


def test_the_boundary_exits_2_with_one_line_and_130_on_ctrl_c(capsys):
    with pytest.raises(SystemExit) as e, user_errors():
        raise PipelineError("x.yaml: bad; fix it")
    assert e.value.code == EXIT_ERROR
    assert capsys.readouterr().err == "error: x.yaml: bad; fix it\n"
    with pytest.raises(SystemExit) as e, user_errors():
        raise KeyboardInterrupt
    assert e.value.code == EXIT_INTERRUPTED
    assert capsys.readouterr().err == f"error: {INTERRUPTED}\n"


def entry_points() -> list[Path]:
    """Every module of ours that runs as a program."""
    modules = sorted((ROOT / "flows").glob("*.py"))
    return [m for m in modules if "__main__" in m.read_text()]


MARKS = ("run_stage(", "with boundary()", "with user_errors()", "with boundary(), ")


def _bounded(tree: ast.Module, main_block: ast.If) -> bool:
    """Whether the `if __name__ == "__main__":` block runs inside the boundary: it calls
    run_stage or opens `with boundary()`, or calls a function that does, or one decorated with
    boundary() or user_errors()."""
    bounded = {
        f.name
        for f in tree.body
        if isinstance(f, ast.FunctionDef)
        and (
            any(ast.unparse(d) in ("boundary()", "user_errors()") for d in f.decorator_list)
            or any(mark in ast.unparse(f) for mark in MARKS)
        )
    }
    code = ast.unparse(main_block)
    return any(mark in code for mark in MARKS) or any(f"{name}(" in code for name in bounded)


@pytest.mark.parametrize("module", entry_points(), ids=lambda m: m.stem)
def test_every_entry_point_runs_inside_the_boundary(module):
    tree = ast.parse(module.read_text())
    (main,) = [n for n in tree.body if isinstance(n, ast.If) and "__main__" in ast.unparse(n.test)]
    assert _bounded(tree, main), f"{module.name}: its __main__ block bypasses the boundary"

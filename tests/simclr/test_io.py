"""simclr/io.py: the one way every output is written. Nothing of the user's is deleted or
replaced by something of another kind, a bad target is refused before any work, and an error
names the target the user gave, never our temporary."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from helpers import tree_digest

from flows.errors import explain
from simclr.errors import PipelineError
from simclr.io import atomic_path, write_text


@pytest.fixture
def sentinel(tmp_path) -> Path:
    """A folder of the user's, with files and a sub-folder."""
    root = tmp_path / "keep"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("precious")
    (root / "sub" / "b.bin").write_bytes(os.urandom(64))
    return root


def test_a_file_is_never_written_over_a_folder_and_the_folder_is_untouched(sentinel):
    before = tree_digest(sentinel)
    with pytest.raises(PipelineError, match=r"keep: is a folder, where a file is written"):
        write_text(sentinel, "x")
    assert tree_digest(sentinel) == before
    assert sorted(p.name for p in sentinel.parent.iterdir()) == ["keep"]  # no temporary


def test_a_symbolic_link_to_a_folder_is_refused_and_one_to_a_file_is_written_through(
    tmp_path, sentinel
):
    (tmp_path / "to-dir").symlink_to(sentinel)
    with pytest.raises(PipelineError, match="is a folder"):
        write_text(tmp_path / "to-dir", "x")
    (tmp_path / "to-file").symlink_to(sentinel / "a.txt")
    write_text(tmp_path / "to-file", "new")
    assert (tmp_path / "to-file").is_symlink() and (sentinel / "a.txt").read_text() == "new"


def test_a_folder_is_never_written_over_a_file(tmp_path):
    target = tmp_path / "report.md"
    target.write_text("mine")
    refused = r"report\.md: is a file, where a folder is written"
    with pytest.raises(PipelineError, match=refused), atomic_path(target, tree=True) as tmp:
        tmp.mkdir()
    assert target.read_text() == "mine"


def test_a_path_below_a_regular_file_is_refused_naming_the_file(tmp_path):
    (tmp_path / "a.txt").write_text("mine")
    with pytest.raises(PipelineError) as e:
        write_text(tmp_path / "a.txt" / "deeper" / "x.md", "x")
    assert str(e.value) == (
        f"{tmp_path}/a.txt/deeper/x.md: {tmp_path}/a.txt is a file, not a folder; choose "
        "another path"
    )
    assert (tmp_path / "a.txt").read_text() == "mine"


def test_the_check_comes_before_the_work(tmp_path, sentinel):
    ran = []
    with pytest.raises(PipelineError), atomic_path(sentinel) as tmp:
        ran.append(tmp)
    assert ran == []


def test_an_os_error_while_writing_names_the_target_not_the_temporary(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(OSError) as e, atomic_path(target) as tmp:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(tmp))
    assert isinstance(e.value, PermissionError) and e.value.filename == str(target)
    assert explain(e.value) == (
        f"Permission denied ({target}); check its permissions (ls -l) or run as a user who may "
        "use it"
    )
    assert list(tmp_path.iterdir()) == []


def test_missing_parent_folders_are_made_and_a_file_is_replaced_whole(tmp_path):
    target = tmp_path / "new" / "deeper" / "x.md"
    write_text(target, "one")
    write_text(target, "two")
    assert target.read_text() == "two"
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.md"]

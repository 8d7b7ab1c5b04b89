"""Atomic file writes: write to a temporary name beside the target, then rename.

A reader (a later stage, DVC) sees the old target or the complete new one, never a partial
one: a process killed mid-write leaves only a temporary `.<name>.<pid>.<random>.tmp` beside the
target, which the next write to that target removes. A full disk is a PipelineError that says
so, and the previous target is kept."""

from __future__ import annotations

import errno
import glob
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path

from simclr.errors import PipelineError

# Errors of a full disk or an exhausted quota: retrying cannot help, the user can.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _temp_name(target: Path) -> Path:
    """A new unique name beside `target` that says which process made it."""
    prefix = f".{target.name}.{os.getpid()}."
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=".tmp", dir=target.parent))
    path.rmdir()  # mkdtemp only reserves a unique name; the caller creates file or dir
    return path


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of `target` left by processes that no longer run (killed before
    they could rename or clean up); those of running processes are left alone."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.tmp")
    removed = []
    for path in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        match = pattern.fullmatch(path.name)
        if match and not _alive(int(match.group(1))):
            _remove(path)
            removed.append(path)
    return removed


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside `target`; on success rename it onto `target`.

    Works for files and directories. On error the temporary is removed and `target` is untouched;
    an error of a full disk becomes a PipelineError naming `target`.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp = _temp_name(target)
    old = None
    try:
        try:
            yield tmp
        except OSError as e:
            if e.errno in DISK_FULL:
                kept = "the previous one is kept" if target.exists() else "nothing was written"
                raise PipelineError(
                    f"{target}: disk full while writing it ({e.strerror or e}); {kept}; free "
                    f"space on {target.parent.resolve()} and re-run"
                ) from None
            raise
        if target.is_dir() and not target.is_symlink():
            # A directory cannot be replaced in one rename: move the old one aside first, so
            # that `target` is at every moment the old tree, absent, or the new tree.
            old = _temp_name(target)
            os.replace(target, old)
        try:
            os.replace(tmp, target)
        except BaseException:
            if old is not None:
                os.replace(old, target)
                old = None
            raise
    finally:
        for path in (tmp, old):
            if path is not None and (path.exists() or path.is_symlink()):
                _remove(path)


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and rename the result onto `target`."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_json(target: str | Path, obj) -> Path:
    return write_atomic(target, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def write_text(target: str | Path, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text))

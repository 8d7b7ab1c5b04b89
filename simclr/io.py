"""Atomic file writes: write to a temporary name beside the target, then rename."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(target: str | Path):
    """Yield a temporary path beside `target`; on success rename it onto `target`.

    Works for files and directories. On error the temporary is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    shutil.rmtree(tmp)  # mkdtemp only reserves a unique name; the caller creates file or dir
    try:
        yield tmp
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and rename the result onto `target`."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_json(target: str | Path, obj) -> Path:
    return write_atomic(target, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True)))


def write_text(target: str | Path, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text))

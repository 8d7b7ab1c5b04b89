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

from simclr.errors import NotFound, PipelineError

# Errors of a full disk or an exhausted quota: retrying cannot help, the user can.
DISK_FULL = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}


def _temp_name(target: Path, suffix: str = ".tmp") -> Path:
    """A new unique name beside `target` that says which process made it."""
    prefix = f".{target.name}.{os.getpid()}."
    path = Path(tempfile.mkdtemp(prefix=prefix, suffix=suffix, dir=target.parent))
    path.rmdir()  # mkdtemp only reserves a unique name; the caller creates file or dir
    return path


PID_MAX = 1 << 22  # Linux's largest; a bigger number in a name is not one of our pids


def _start_time(pid: int) -> float | None:
    """When process `pid` started (seconds since the epoch), where /proc tells; else None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
        return boot + int(fields[19]) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError, StopIteration):
        return None


def _writer_alive(pid: int, path: Path) -> bool:
    """Whether the process that made temporary `path` may still be writing it: a process with
    its pid runs, and (where /proc says) started before the temporary was last changed, so a
    reused pid (a new container's, a rebooted machine's) does not keep a dead run's file."""
    if os.name == "nt":  # no harmless probe (os.kill would terminate): never remove
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. EPERM: it exists, under another user
        pass
    started = _start_time(pid)
    try:
        changed = path.lstat().st_mtime
    except OSError:
        return True  # gone meanwhile: nothing to remove
    return started is None or started <= changed + 1


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def remove_stale_temporaries(target: Path) -> list[Path]:
    """Remove the temporaries of `target` left by processes that no longer run (killed before
    they could rename or clean up); those of running processes are left alone. An old tree set
    aside (`.old`) by a process killed between its two renames is put back if `target` is
    missing, else removed."""
    pattern = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[^.]+\.(tmp|old)")
    removed = []
    for path in sorted(target.parent.glob(f".{glob.escape(target.name)}.*.*")):
        match = pattern.fullmatch(path.name)
        if not match or not 0 < int(match.group(1)) < PID_MAX:
            continue  # not a name this module makes
        if _writer_alive(int(match.group(1)), path):
            continue
        if match.group(2) == "old" and not target.exists():
            os.replace(path, target)
            continue
        _remove(path)
        removed.append(path)
    return removed


def check_target(target: str | Path, tree: bool = False) -> Path:
    """Refuse, before any work, a `target` that cannot take the output without harm to what is
    there: a folder where a file goes (or a file where a folder goes), a path below a regular
    file, a place that is read-only or not ours to write. Nothing is created. A symbolic link
    is followed: its file is written, the link kept. Returns the path to write."""
    target = Path(target)
    if target.is_symlink():
        target = Path(os.path.realpath(target))
    if target.exists():
        if tree and not target.is_dir():
            raise PipelineError(f"{target}: is a file, where a folder is written; name a folder")
        if not tree and target.is_dir():
            raise PipelineError(
                f"{target}: is a folder, where a file is written; name a file (nothing in the "
                "folder was touched)"
            )
        if not tree and not target.is_file():
            raise PipelineError(f"{target}: not a regular file; name a file")
    ancestor = target.parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise PipelineError(f"{target}: {ancestor} is a file, not a folder; choose another path")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        read_only = _read_only(ancestor)
        why = "is on a read-only file system" if read_only else "is not writable by this user"
        raise PipelineError(f"{target}: cannot write it: {ancestor} {why}; use a writable place")
    return target


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _named(e: OSError, temporaries: tuple, target: Path) -> OSError:
    """`e` naming `target` where it named one of our temporaries, which the user never named."""
    ours = {Path(t) for t in temporaries if t is not None}
    if e.filename is None or Path(e.filename) not in ours:
        return e
    return OSError(e.errno, e.strerror, str(target))  # the same subclass (PermissionError, ...)


@contextmanager
def atomic_path(target: str | Path, tree: bool = False):
    """Yield a temporary path beside `target`; on success rename it onto `target`: a file, or
    with `tree` a folder (which replaces the folder there as a whole: the pipeline's own
    outputs, and exports).

    The target is checked first (`check_target`): an existing folder is never replaced by a
    file, nor a file by a folder. On error the temporary is removed and `target` is untouched;
    an error of a full disk becomes a PipelineError naming `target`, and an OS error names
    `target`, not the temporary.
    """
    target = check_target(target, tree)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    tmp, old = None, None
    try:
        tmp = _temp_name(target)
        try:
            yield tmp
        except OSError as e:
            if e.errno in DISK_FULL:
                kept = "the previous one is kept" if target.exists() else "nothing was written"
                raise PipelineError(
                    f"{target}: disk full while writing it ({e.strerror or e}); {kept}; free "
                    f"space on {target.parent.resolve()} and re-run"
                ) from None
            raise _named(e, (tmp,), target) from None
        if tree and target.is_dir():
            # A directory cannot be replaced in one rename: move the old one aside first, so
            # that `target` is at every moment the old tree, absent, or the new tree.
            old = _temp_name(target, ".old")
            os.replace(target, old)
        os.replace(tmp, target)
    except OSError as e:
        raise _named(e, (tmp, old), target) from None
    finally:
        if old is not None and old.exists() and not target.exists():
            os.replace(old, target)  # stopped between the two renames: the old tree comes back
            old = None
        for path in (tmp, old):
            if path is not None and (path.exists() or path.is_symlink()):
                _remove(path)


def write_atomic(target: str | Path, write: Callable[[Path], None]) -> Path:
    """Call `write(tmp_path)` and rename the result onto `target`."""
    with atomic_path(target) as tmp:
        write(tmp)
    return Path(target)


def write_json(target: str | Path, obj) -> Path:
    """`obj` as strict JSON: NaN and infinities, which json.dumps would write as tokens no JSON
    parser but Python's reads, are refused (a bug of the writer: give a number or null)."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    except ValueError as e:
        raise ValueError(f"{target}: {e}; write finite numbers or null") from None
    return write_text(target, text)


def write_text(target: str | Path, text: str) -> Path:
    return write_atomic(target, lambda p: p.write_text(text))


def read_json(path: str | Path) -> dict:
    """A JSON file another step wrote; missing, it is a NotFound about an "output"."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{path}: missing", about="output")
    return json.loads(path.read_text())

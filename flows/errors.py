"""The boundary every entry point runs inside, so that an error a user can cause ends the
program with one line, never a traceback:

    error: <what> (<where>); <what to do>

A PipelineError (simclr/errors.py) carries its own line of fact; `explain` adds what to do about
it in the pipeline (tasks/advice.py). Other exceptions a user's input or machine can cause (an
OS error such as a permission or a full disk, text that is not UTF-8, YAML, recursion, memory,
an exception raised inside Pillow, NumPy or matplotlib while they read or draw the user's data)
are described by `explain` from their type. Everything else is a bug of ours and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
import traceback
from contextlib import contextmanager
from pathlib import Path

from simclr.errors import MAX_VALUE, PipelineError, single_line
from tasks.advice import advised

EXIT_ERROR = 2  # an error the user can fix
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report a Ctrl-C
OUR_PACKAGES = ("simclr", "tasks", "flows")
# Libraries that read or draw the user's data: what they raise is about that data.
LIBRARIES = {"PIL": "Pillow", "numpy": "NumPy", "matplotlib": "matplotlib"}


# errno -> what to do about it.
OS_ADVICE = {
    errno.EACCES: "check its permissions (ls -l) or run as a user who may use it",
    errno.EPERM: "check its permissions (ls -l) or run as a user who may use it",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "check the path: a part of it is a file",
    errno.EISDIR: "check the path: it is a folder",
    errno.ENOSPC: "free space there and re-run",
    errno.EDQUOT: "free space there (or raise the quota) and re-run",
    errno.EFBIG: "free space there (or raise the file-size limit) and re-run",
    errno.EROFS: "the file system is read-only; use a writable place",
    errno.ENAMETOOLONG: "shorten the name",
    errno.ELOOP: "a symbolic link points back at itself; fix the link",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) and re-run",
    errno.ENFILE: "too many open files on this machine; close some and re-run",
    errno.ENOMEM: "the machine is out of memory; free some or use smaller params",
}
MEMORY_ADVICE = (
    "lower data.image_size, the batch sizes (pretrain, evaluate, evaluate.finetune) or "
    "data.workers, or run on a machine with more memory"
)


def _where(exc: BaseException) -> str:
    """The innermost line of our own code that the exception passed through."""
    found = "unknown place"
    for frame in traceback.extract_tb(exc.__traceback__):
        parts = Path(frame.filename).parts
        for i, part in enumerate(parts[:-1]):
            if part in OUR_PACKAGES and parts[-1].endswith(".py"):
                found = f"{'/'.join(parts[i:])}:{frame.lineno} in {frame.name}"
                break
    return found


def _raised_in(exc: BaseException) -> str | None:
    """The library (of LIBRARIES) whose code raised `exc`, if it was one."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "") if tb is not None else ""
    return LIBRARIES.get(module.partition(".")[0])


def _os_error(e: OSError) -> str:
    names = [str(n) for n in (e.filename, e.filename2) if n is not None]
    where = " -> ".join(names) if names else _where(e)
    what = e.strerror or single_line(str(e), MAX_VALUE) or type(e).__name__
    advice = OS_ADVICE.get(e.errno, "check the file or device and re-run")
    return f"{what} ({where}); {advice}"


def _yaml_error(e: BaseException) -> str:
    mark = getattr(e, "problem_mark", None)
    where = f"{mark.name}, line {mark.line + 1}" if mark is not None else _where(e)
    problem = getattr(e, "problem", None) or str(e)
    return f"not valid YAML: {single_line(problem, MAX_VALUE)} ({where}); fix the syntax"


def _is_yaml_error(e: BaseException) -> bool:
    return any(
        c.__name__ == "YAMLError" and c.__module__.partition(".")[0] in ("ruamel", "yaml")
        for c in type(e).__mro__
    )


def explain(exc: BaseException) -> str | None:
    """The one line (without "error: ") for an exception a user can cause or fix; None for one
    that is a bug of ours, which keeps its traceback."""
    if isinstance(exc, PipelineError):
        line = advised(exc)  # the pipeline's advice on a library error
        cause = exc.__cause__  # a library error stating an OS error: what to do about it
        if isinstance(cause, OSError) and cause.errno in OS_ADVICE:
            line = f"{line}; {OS_ADVICE[cause.errno]}"
        return single_line(line)
    if isinstance(exc, UnicodeDecodeError):
        byte = exc.object[exc.start : exc.start + 1].hex()
        return single_line(
            f"text that is not UTF-8 (byte 0x{byte} at offset {exc.start}) ({_where(exc)}); "
            "save the file as UTF-8"
        )
    if isinstance(exc, UnicodeEncodeError):
        bad = exc.object[exc.start : exc.end]
        return single_line(
            f"a name or text that cannot be written as UTF-8 ({bad!r}) ({_where(exc)}); "
            "rename the file or folder to UTF-8"
        )
    if _is_yaml_error(exc):
        return single_line(_yaml_error(exc))
    if isinstance(exc, OSError):
        return single_line(_os_error(exc))
    if isinstance(exc, RecursionError):
        return single_line(f"input nested too deeply ({_where(exc)}); simplify it")
    if isinstance(exc, MemoryError):
        reason = single_line(str(exc), MAX_VALUE) or "MemoryError"
        return single_line(f"out of memory: {reason} ({_where(exc)}); {MEMORY_ADVICE}")
    library = _raised_in(exc)
    if library is not None and isinstance(exc, Exception):
        reason = single_line(f"{type(exc).__name__}: {exc}", MAX_VALUE)
        return single_line(
            f"{library} could not handle the data: {reason} ({_where(exc)}); check the "
            "file or value it was given"
        )
    return None


def _say(line: str) -> None:
    # One write: processes sharing the stream (torchrun's workers) do not interleave it.
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()


INTERRUPTED = (
    "interrupted (Ctrl-C); outputs being written were discarded, finished ones are kept "
    "(pretraining keeps its last finished epoch); run the command again to continue"
)


@contextmanager
def user_errors():
    """The boundary of an entry point (a `with` block or a decorator, `@user_errors()`): an
    error a user can cause or fix is printed as `error: <line>` and the program exits with
    status 2; Ctrl-C prints one line and exits with 130; anything else is re-raised with its
    traceback."""
    try:
        yield
    except KeyboardInterrupt:
        _say(INTERRUPTED)
        raise SystemExit(EXIT_INTERRUPTED) from None
    except Exception as e:
        line = explain(e)
        if line is None:
            raise
        _say(line)
        raise SystemExit(EXIT_ERROR) from None


class ArgumentParser(argparse.ArgumentParser):
    """argparse's parser, whose refusal of an argument is the one line every other error is
    (`error: <what> (<prog>); see <prog> --help`, exit 2) rather than its usage block and a
    second line."""

    def error(self, message: str):
        _say(single_line(f"{message} ({self.prog}); see {self.prog} --help"))
        raise SystemExit(EXIT_ERROR)

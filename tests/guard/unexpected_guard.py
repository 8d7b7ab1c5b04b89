"""The test suite's guard against tracebacks, installed in every Python process the tests start
(sitecustomize.py beside this file is on their PYTHONPATH; tests/conftest.py puts it there):
an exception that ends one of our programs with a traceback, a bug of ours, is appended to the
file named by SIMCLR_UNEXPECTED_ERRORS. An error a user can cause ends in SystemExit at the
boundary (flows/errors.py) and is not recorded, nor is a failure of another program (dvc,
prefect) that our code took no part in."""

import os
import sys
import traceback
from pathlib import Path

UNEXPECTED_LOG = "SIMCLR_UNEXPECTED_ERRORS"
OUR_PACKAGES = ("simclr", "tasks", "flows")


def _ours(tb) -> bool:
    """Whether the traceback passed through a module of our packages."""
    return any(
        part in OUR_PACKAGES
        for frame in traceback.extract_tb(tb)
        for part in Path(frame.filename).parts[:-1]
    )


def _record(kind, value, tb) -> None:
    log = os.environ.get(UNEXPECTED_LOG)
    if log and not issubclass(kind, KeyboardInterrupt) and _ours(tb):
        with open(log, "a", encoding="utf-8") as f:
            text = "".join(traceback.format_exception(kind, value, tb))
            f.write(f"{' '.join(sys.argv)}\n{text}\n")
    _previous(kind, value, tb)


_previous = sys.excepthook
sys.excepthook = _record

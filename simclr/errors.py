"""The library's error type: a mistake a user can make and fix (bad input, a missing or
damaged file, a wrong path), stated as one line of fact that names the file, key or value.
What to do about it in the pipeline (which stage to re-run) is added by the layer that knows
(tasks/advice.py); the command line prints the line (flows/errors.py)."""

from __future__ import annotations

MAX_LINE = 600  # characters of an error line; a huge value (a path, an alias bomb) is cut
MAX_VALUE = 240  # characters of a library's own message inside the line


class PipelineError(Exception):
    """Bad params, missing or corrupt data, a wrong path: the message names the file, key or
    row; entry points print it on one line and exit non-zero. `about` names what the error
    concerns ("checkpoint", "prepared data", ...) for the layer that knows what to do about it."""

    def __init__(self, message: str = "", *, about: str | None = None):
        super().__init__(message)
        self.about = about

    def __reduce__(self):  # pickled (a process boundary) with its `about`
        return (type(self), (str(self),), {"about": self.about})


class NotFound(PipelineError):
    """A file or folder that should be there is not."""


class Damaged(PipelineError):
    """A file that is there but does not hold what was written: truncated, altered, foreign."""


def single_line(text: str, limit: int = MAX_LINE) -> str:
    """`text` on one line of at most `limit` characters: control characters (a file name may
    hold a newline) written as escapes, the middle of an overlong text cut out."""
    text = "".join(c if c.isprintable() or c == " " else repr(c)[1:-1] for c in str(text))
    if len(text) <= limit:
        return text
    half = (limit - 5) // 2
    return f"{text[:half]} ... {text[-half:]}"

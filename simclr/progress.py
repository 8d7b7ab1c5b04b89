"""Progress of long work (pretraining epochs, feature extraction, fine-tuning, image decoding,
embedding): `track` wraps the loop's iterable.

On a terminal (stderr is a TTY with columns) it draws a tqdm bar: images done of the total,
steps, images/s, elapsed and time left; the bar appears only for work lasting over BAR_DELAY
seconds and is cleared when the work ends, so the caller's own summary line (the epoch's loss,
say) is what stays on screen. Anywhere else (a log file, CI, DVC run by the scheduled Prefect
flow, pytest, a TTY of 0 columns) there are no carriage returns: one plain `logging` line
(logger `simclr.progress`, INFO) every LOG_EVERY seconds while the work lasts, and nothing for
work shorter than that.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator, Sized
from typing import TypeVar

from tqdm import tqdm

log = logging.getLogger("simclr.progress")

BAR_DELAY = 1.0  # seconds before a bar appears: quick work draws nothing
LOG_EVERY = 60.0  # seconds between plain progress lines where stderr is not a terminal
BAR_FORMAT = (
    "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} images "
    "[{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)

T = TypeVar("T")


def track(
    items: Iterable[T],
    what: str,
    per_item: int = 1,
    total: int | None = None,
    show: bool = True,
) -> Iterator[T]:
    """Yield `items`, each counting as `per_item` images done once the loop body has run
    (a batch; the count stops at `total`, so a short last batch is fine). `total` defaults to
    len(items) x per_item; steps are shown where `items` has a length. `show=False` yields the
    items and shows nothing (e.g. on every process of a distributed run but the first)."""
    steps = len(items) if isinstance(items, Sized) else None
    if total is None and steps is not None:
        total = steps * per_item
    if not show:
        yield from items
        return
    meter = _Bar(what, total) if _draws_bars(sys.stderr) else _LogLines(what, total)
    done = 0
    try:
        for step, item in enumerate(items, 1):
            yield item
            done = done + per_item if total is None else min(done + per_item, total)
            meter.update(done, f"step {step}/{steps}" if steps else f"step {step}")
    finally:
        meter.close()


def _draws_bars(stream) -> bool:
    """A terminal that can show a bar: a TTY with columns. Some CI runners and pty wrappers
    report 0 columns, where tqdm draws nothing; they get the plain lines."""
    if not stream.isatty():
        return False
    try:
        return os.get_terminal_size(stream.fileno()).columns > 0
    except (OSError, ValueError, io.UnsupportedOperation):
        return True  # a TTY whose size is unknown: tqdm falls back to its default width


class _Bar:
    """A tqdm bar on stderr, cleared when closed."""

    def __init__(self, what: str, total: int | None):
        self.bar = tqdm(
            total=total,
            desc=what,
            unit=" images",
            leave=False,
            delay=BAR_DELAY,
            dynamic_ncols=True,
            bar_format=BAR_FORMAT if total else None,
            file=sys.stderr,
        )

    def update(self, done: int, steps: str) -> None:
        self.bar.set_postfix_str(steps, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        self.bar.close()


class _LogLines:
    """A plain log line every LOG_EVERY seconds: no carriage returns, nothing for quick work."""

    def __init__(self, what: str, total: int | None):
        self.what, self.total = what, total
        self.start = self.last = time.monotonic()

    def update(self, done: int, steps: str) -> None:
        now = time.monotonic()
        if now - self.last < LOG_EVERY:
            return
        self.last = now
        log.info("%s: %s", self.what, progress_line(done, self.total, steps, now - self.start))

    def close(self) -> None:
        pass


def progress_line(done: int, total: int | None, steps: str, seconds: float) -> str:
    """'1,200/5,000 images (24%), step 5/20, 312 images/s, 00:12 left'."""
    rate = done / seconds if seconds > 0 else 0.0
    parts = [f"{done:,}/{total:,} images ({done / total:.0%})" if total else f"{done:,} images"]
    parts += [steps, f"{rate:,.0f} images/s"]
    if total and rate > 0:
        parts.append(f"{tqdm.format_interval((total - done) / rate)} left")
    return ", ".join(parts)

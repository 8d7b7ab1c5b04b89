"""Progress of long work: a bar with images, steps, images/s and time left on a terminal; plain
log lines (no carriage returns) elsewhere; nothing for quick work; every item passed through."""

from __future__ import annotations

import io
import logging
import re
import time

import pytest

import simclr.progress as progress
from simclr.progress import progress_line, track


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    """time.monotonic for the progress module, moved on by hand."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(progress.time, "monotonic", c)
    return c


def test_on_a_terminal_a_bar_shows_images_steps_rate_and_time_left(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(progress.sys, "stderr", screen)
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    items = []
    for item in track(range(4), "epoch 1/3", per_item=32):
        items.append(item)
        time.sleep(0.15)  # tqdm redraws at most every 0.1 s
    assert items == [0, 1, 2, 3]
    drawings = [d for d in screen.getvalue().split("\r") if d.strip()]
    assert drawings[0].startswith("epoch 1/3:   0%|")
    # e.g. "epoch 1/3:  75%|███████▌  | 96/128 images [00:00<00:00, 213.05 images/s, step 3/4]"
    shown = r"epoch 1/3: +\d+%\|.*\| (\d+)/128 images \[00:00<00:00, [\d.]+ images/s, step (\d)/4\]"
    later = [re.fullmatch(shown, d.rstrip()) for d in drawings[1:]]
    assert later and all(later), drawings
    assert all(int(m.group(1)) == 32 * int(m.group(2)) for m in later)
    assert screen.getvalue().split("\r")[-1].strip() == ""  # cleared when done


def test_elsewhere_plain_lines_every_interval_and_none_for_quick_work(clock, monkeypatch, caplog):
    monkeypatch.setattr(progress.sys, "stderr", io.StringIO())  # not a terminal
    caplog.set_level(logging.INFO, logger="simclr.progress")
    for _ in track(range(3), "quick", per_item=10):
        clock.now += 1
    assert caplog.records == []
    for _ in track(range(10), "features", per_item=100, total=950):
        clock.now += progress.LOG_EVERY / 4  # a line every 4 items
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "features: 400/950 images (42%), step 4/10, 7 images/s, 01:22 left",
        "features: 800/950 images (84%), step 8/10, 7 images/s, 00:22 left",
    ]
    assert not any("\r" in line for line in lines)


def test_the_count_stops_at_the_total_and_an_unsized_iterable_has_no_step_total():
    assert progress_line(950, 950, "step 10/10", 10.0).startswith("950/950 images (100%)")
    assert progress_line(64, None, "step 1", 2.0) == "64 images, step 1, 32 images/s"


def test_hidden_progress_yields_everything_and_draws_nothing(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(progress.sys, "stderr", screen)
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    assert list(track(iter("abc"), "x", show=False)) == ["a", "b", "c"]
    assert screen.getvalue() == ""


def test_a_loop_that_stops_early_closes_its_bar(monkeypatch):
    screen = Terminal()
    monkeypatch.setattr(progress.sys, "stderr", screen)
    monkeypatch.setattr(progress, "BAR_DELAY", 0.0)
    with pytest.raises(ValueError):
        for i in track(range(10), "x"):
            if i == 3:
                raise ValueError
    assert screen.getvalue().split("\r")[-1].strip() == ""  # cleared


def test_a_terminal_of_zero_columns_gets_the_plain_lines(clock, monkeypatch, caplog):
    # A real pseudo-terminal that reports 0 x 0, as some CI runners and pty wrappers do: tqdm
    # would draw nothing there, so a long job would look hung.
    import fcntl
    import os
    import pty
    import struct
    import termios

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 0, 0, 0, 0))
    with os.fdopen(follower, "w") as screen:
        assert screen.isatty() and os.get_terminal_size(follower).columns == 0
        monkeypatch.setattr(progress.sys, "stderr", screen)
        caplog.set_level(logging.INFO, logger="simclr.progress")
        for _ in track(range(2), "evaluating", per_item=10):
            clock.now += progress.LOG_EVERY
    os.close(leader)
    assert [r.getMessage() for r in caplog.records] == [
        "evaluating: 10/20 images (50%), step 1/2, 0 images/s, 01:00 left",
        "evaluating: 20/20 images (100%), step 2/2, 0 images/s, 00:00 left",
    ]

"""What the benchmark scripts share: where the CIFAR-10 dev images are, what every result file
records beside its figures (date, command, CPU, git commit) and how it is written."""

from __future__ import annotations

import datetime as dt
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script from anywhere, without installing

from simclr.io import write_json  # noqa: E402


def dev_data() -> Path:
    """The CIFAR-10 dev folder: ../shared/datasets/cifar10-dev beside the checkout (DESIGN.md),
    or beside the folder that holds it (a git worktree); the first when neither exists."""
    candidates = [base / "shared" / "datasets" / "cifar10-dev" for base in ROOT.parents[:2]]
    return next((p for p in candidates if p.is_dir()), candidates[0])


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def shown_path(path: str) -> str:
    """`path` relative to the repository root when inside it (.venv/bin/python)."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def command() -> str:
    """The command line that ran this benchmark."""
    return " ".join([shown_path(sys.executable), *sys.argv])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_describe() -> dict:
    def git(*a):
        r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        return r.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain"))}


def save(out: Path, record: dict) -> int:
    """Write `record` as JSON (atomically, parents created) and say where; the exit status."""
    write_json(out, record)
    print(f"wrote {out}")
    return 0

"""Where a result came from: git commit, package versions, device, host."""

from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

PACKAGES = ("torch", "torchvision", "numpy", "scikit-learn", "prefect", "dvc", "great-expectations")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    """HEAD of the repository in the working directory; None outside one."""
    return _git("rev-parse", "HEAD")


def provenance(device: str | None = None) -> dict:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "git_commit": git_commit(),
        "git_dirty": bool(status) if status is not None else None,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": {name: _version(name) for name in PACKAGES},
        "device": device,
    }

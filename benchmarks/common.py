"""What every benchmark records beside its figures, and where: one JSON line appended per run to
benchmarks/results/<name>.jsonl, with the date, the command, the git commit and the machine
(CPU model, cores, torch version, device) inside the record."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def results_file(name: str) -> Path:
    """Where the benchmark `name` appends its records."""
    return RESULTS / f"{name}.jsonl"


def now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def shown_path(path: str) -> str:
    """`path` relative to the repository root when inside it (.venv/bin/python)."""
    try:
        return str(Path(path).relative_to(ROOT))
    except ValueError:
        return path


def command() -> str:
    """The command line that ran this benchmark, as `python -m benchmarks...` would show it."""
    main = sys.modules["__main__"]
    module = getattr(main, "__spec__", None) and main.__spec__.name
    args = ["-m", module, *sys.argv[1:]] if module else sys.argv
    return " ".join([shown_path(sys.executable), *args])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def git_describe() -> dict:
    """The commit of this checkout, and whether it had uncommitted changes."""

    def git(*a):
        try:
            r = subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True, check=False)
        except OSError:  # no git (a bare GPU machine)
            return ""
        return r.stdout.strip()

    return {"commit": git("rev-parse", "HEAD") or None, "dirty": bool(git("status", "--porcelain"))}


def machine(device: str = "cpu") -> dict:
    """The machine a figure was measured on; `device` "cuda" adds the GPU's name."""
    if "torch" in sys.modules:  # its own version string keeps the build (+cu130)
        torch = sys.modules["torch"].__version__
    else:
        try:
            torch = metadata.version("torch")
        except metadata.PackageNotFoundError:
            torch = None
    gpu = None
    if device.startswith("cuda"):
        import torch as _torch

        gpu = _torch.cuda.get_device_name() if _torch.cuda.is_available() else None
    return {"cpu": cpu_model(), "cores": os.cpu_count(), "torch": torch, "device": gpu or device}


def save(out: Path, figures: dict, device: str = "cpu") -> int:
    """Append one record (date, command, commit, machine, then `figures`) to `out` as a JSON
    line, parents created, and say where; the exit status."""
    record = {"date": now(), "command": command(), **git_describe(), "machine": machine(device)}
    record.update(figures)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")
    print(f"appended to {out}")
    return 0


def deterministic(on: bool) -> None:
    """torch's deterministic algorithms on or off, as `simclr.device.seed_everything` sets them
    on the CPU: on, without filling every new tensor with NaN (which pretrain does not pay)."""
    import torch  # here: the other helpers do not need it

    torch.use_deterministic_algorithms(on)
    torch.utils.deterministic.fill_uninitialized_memory = not on


def assign(tree: dict, key: str, value) -> None:
    """Set the dotted params `key` of nested mappings in place: assign(p, "a.b", 1) is
    p["a"]["b"] = 1, the way `dvc exp run -S a.b=1` names it."""
    *parents, leaf = key.split(".")
    for parent in parents:
        tree = tree[parent]
    tree[leaf] = value

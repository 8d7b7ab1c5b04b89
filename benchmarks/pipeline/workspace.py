"""A throwaway clone of this repository's HEAD in which to run pipeline stages for real, timed,
with the peak memory of each stage's process sampled from /proc."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ruamel.yaml import YAML

from benchmarks.common import ROOT

BIN = Path(sys.executable).parent


def clone(params: dict, ref: str = "HEAD") -> Path:
    """A git clone of `ref` (with `dvc init` done there) whose params.yaml is `params`."""
    path = Path(tempfile.mkdtemp(prefix="simclr-bench-"))
    subprocess.run(["git", "clone", "-q", str(ROOT), str(path)], check=True)
    if ref != "HEAD":  # another commit of this checkout (e.g. main, to measure "before")
        sha = subprocess.run(
            ["git", "rev-parse", ref], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        subprocess.run(["git", "checkout", "-q", sha], cwd=path, check=True)
    yaml = YAML()
    with open(path / "params.yaml", "w") as f:
        yaml.dump(params, f)
    return path


def load_params(path: Path | None = None) -> dict:
    """params.yaml at `path`, or the repository's."""
    return YAML(typ="safe").load((path or ROOT / "params.yaml").read_text())


def _status(pid: int) -> dict[str, int]:
    try:
        with open(f"/proc/{pid}/status") as f:
            return {
                k: int(v.split()[0])
                for k, v in (x.split(":", 1) for x in f)
                if v.strip().endswith("kB")
            }
    except (FileNotFoundError, ProcessLookupError):
        return {}


def _mapped_kib(pid: int, name: str) -> int:
    """Resident KiB of the process's mappings of files called `name` (from /proc/pid/smaps)."""
    total, inside = 0, False
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                key = line.split(None, 1)[0]
                if not key.endswith(":"):  # a mapping's header: addresses, ..., file path
                    inside = line.rstrip().endswith("/" + name)
                elif inside and key == "Rss:":
                    total += int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return total


def stage_env() -> dict[str, str]:
    """The environment stage commands run in: this interpreter's bin/ first on PATH (its
    `python`, `dvc`), analytics off."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "GX_ANALYTICS_ENABLED": "false",
        "DVC_NO_ANALYTICS": "1",
    }


def run(path: Path, *cmd: str, mapped: str | None = None) -> dict:
    """Run `cmd` in the clone; wall seconds, peak RSS (VmHWM), peak anonymous memory (RssAnon:
    what the process allocated itself), peak file-backed memory (RssFile: mapped files, shared
    libraries included) and, with `mapped`, the peak resident part of the mappings of files so
    named (the memory-mapped dataset), in MiB."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=path, env=stage_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = {"VmHWM": 0, "RssAnon": 0, "RssFile": 0, "mapped": 0}

    def sample() -> None:
        while proc.poll() is None:
            s = _status(proc.pid)
            if mapped:
                s["mapped"] = _mapped_kib(proc.pid, mapped)
            for k in peak:
                peak[k] = max(peak[k], s.get(k, 0))
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output = proc.stdout.read()
    proc.wait()
    sampler.join()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output[-4000:]}")
    return {
        "command": " ".join(cmd),
        "seconds": round(time.perf_counter() - start, 1),
        "peak_rss_mib": round(peak["VmHWM"] / 1024, 1),
        "peak_anon_mib": round(peak["RssAnon"] / 1024, 1),
        "peak_file_mib": round(peak["RssFile"] / 1024, 1),
        **({"peak_mapped_data_mib": round(peak["mapped"] / 1024, 1)} if mapped else {}),
        "output": output,
    }

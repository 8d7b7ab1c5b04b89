"""Ctrl-C and kills of real stage commands, with and without a Prefect server (issue 23): a
Ctrl-C (SIGINT to the process group, as a terminal sends it) stops a stage within seconds with
one line and exit status 130, keeping what the fault table promises; no kill, not even SIGKILL,
leaves a Prefect server or another child running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import copy_code

from flows.errors import EXIT_INTERRUPTED, INTERRUPTED

pytestmark = pytest.mark.e2e

# Pretraining that runs far longer than the tests wait: it is always interrupted.
PARAMS = """\
seed: 0
data: {image_size: 8, max_per_class: 20}
datasets: {digits: {source: digits}}
model: {widths: [8, 16], blocks: [1, 1], proj_hidden_dim: 16, proj_dim: 8}
pretrain: {dataset: digits, epochs: 1000, batch_size: 32, warmup_epochs: 1, device: cpu,
           threads: 1, knn_every: 0}
transfer: {datasets: []}
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, prefect_api) -> Path:
    root = copy_code(tmp_path_factory.mktemp("interrupts"))
    (root / "params.yaml").write_text(PARAMS)
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    r = subprocess.run(
        [sys.executable, "-m", "flows.prepare", "digits"],
        cwd=root, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    return root


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """PREFECT_HOME of the servers these tests start (one database: made once, not per test)."""
    return tmp_path_factory.mktemp("prefect-home")


def environment(home: Path, api: str | None) -> dict[str, str]:
    """A stage's environment: its own PREFECT_HOME (to find its server by), and a server's URL
    or none (the stage then starts its own)."""
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env["PREFECT_HOME"] = str(home)
    return {**env, "PREFECT_API_URL": api} if api else env


def servers(home: Path) -> list[int]:
    """Pids of running Prefect servers that use `home`."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            env, cmd = (proc / "environ").read_bytes(), (proc / "cmdline").read_bytes()
        except OSError:  # gone, or not a process
            continue
        if f"PREFECT_HOME={home}".encode() in env.split(b"\0") and b"uvicorn" in cmd:
            found.append(int(proc.name))
    return found


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.2)
    return True


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def start(cmd: list[str], cwd: Path, env: dict) -> subprocess.Popen:
    """`cmd` in a process group of its own, as a terminal runs a command."""
    return subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def pretraining(workdir: Path, env: dict) -> subprocess.Popen:
    """The real pretrain stage, once it has saved its first epoch."""
    for state in (workdir / ".resume").glob("*.pt"):
        state.unlink()
    proc = start([sys.executable, "-m", "flows.pretrain"], workdir, env)
    saved = wait_for(lambda: any((workdir / ".resume").glob("*.pt")) or proc.poll(), 120)
    assert saved and proc.poll() is None, proc.communicate()[0]
    return proc


def interrupted(proc: subprocess.Popen) -> tuple[str, float]:
    """Ctrl-C to the process group; its output and the seconds it took to exit."""
    start_time = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    out, _ = proc.communicate(timeout=120)
    return out, time.monotonic() - start_time


def assert_one_interrupted_line(proc: subprocess.Popen, out: str) -> None:
    assert proc.returncode == EXIT_INTERRUPTED, out
    assert "Traceback" not in out, out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {INTERRUPTED}"], out


@pytest.mark.parametrize("server", ["a Prefect server", "no server"])
def test_ctrl_c_in_a_stage_stops_it_in_one_line_and_keeps_the_last_epoch(
    workdir, prefect_api, home, server
):
    env = environment(home, prefect_api if server == "a Prefect server" else None)
    proc = pretraining(workdir, env)
    if server == "no server":
        assert len(servers(home)) == 1  # the stage's own, in a session of its own
    out, seconds = interrupted(proc)
    assert_one_interrupted_line(proc, out)
    assert seconds < 15, seconds
    assert any((workdir / ".resume").glob("*.pt"))  # the last finished epoch, for a rerun
    assert not (workdir / "models" / "simclr.pt").exists()
    assert wait_for(lambda: group_gone(proc.pid), 10)  # no child left in its group
    assert wait_for(lambda: servers(home) == [], 10)  # nor its server


def test_sigkill_of_a_stage_leaves_no_prefect_server(workdir, home):
    proc = pretraining(workdir, environment(home, None))
    (server,) = servers(home)
    proc.kill()  # the stage alone, as the kernel's OOM killer does
    proc.communicate(timeout=60)
    assert wait_for(lambda: servers(home) == [], 10), f"server {server} orphaned"


# A command that stops cleanly on Ctrl-C, in place of `dvc repro`; it says when it runs.
PATIENT = (
    "import signal, sys, time; signal.signal(2, lambda *_: sys.exit(130)); "
    "print('running', flush=True); time.sleep(120)"
)


def with_server(home: Path) -> subprocess.Popen:
    """`python -m flows.with_server <command>`, once its server is up and the command runs."""
    cmd = [sys.executable, "-m", "flows.with_server", sys.executable, "-c", PATIENT]
    proc = start(cmd, Path.cwd(), environment(home, None))
    said = []
    while not said or said[-1] not in ("running\n", ""):  # "": the output ended
        said.append(proc.stdout.readline())
    assert said[-1] == "running\n", "".join(said)
    assert len(servers(home)) == 1
    return proc


def test_ctrl_c_under_with_server_stops_the_command_then_the_server(home):
    proc = with_server(home)
    out, seconds = interrupted(proc)
    assert proc.returncode == EXIT_INTERRUPTED, out
    assert "Traceback" not in out and seconds < 15, (out, seconds)
    assert wait_for(lambda: group_gone(proc.pid) and servers(home) == [], 10)


def test_sigkill_of_with_server_leaves_no_prefect_server(home):
    proc = with_server(home)
    proc.kill()
    assert wait_for(lambda: servers(home) == [], 10)
    os.killpg(proc.pid, signal.SIGKILL)  # the command, the user's to stop
    proc.communicate(timeout=60)

"""The prepare stage, run for real, on data that is not there or not usable: one clear error
line, a non-zero exit, and nothing left in data/prepared."""

from __future__ import annotations

import os
import subprocess

import pytest
from helpers import BIN, copy_code

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, prefect_api):
    path = tmp_path_factory.mktemp("prepare-errors")
    copy_code(path)
    return path


def prepare(workdir, prefect_api, dataset: str, extra_env: dict | None = None):
    (workdir / "params.yaml").write_text(
        f"datasets: {{bad: {dataset}}}\npretrain: {{dataset: bad}}\ntransfer: {{datasets: []}}\n"
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_api, **(extra_env or {})}
    return subprocess.run(
        [str(BIN / "python"), "-m", "flows.prepare", "bad"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def no_proxy_network() -> dict:
    """A proxy on a closed loopback port: every download fails at once, as without network
    (loopback, where the Prefect server is, stays direct)."""
    closed = "http://127.0.0.1:9"
    return {
        "https_proxy": closed,
        "http_proxy": closed,
        "HTTPS_PROXY": closed,
        "no_proxy": "127.0.0.1,localhost",
    }


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing root", "image folder not found; check the path"),
        ("empty folder", "no class subfolders"),
        ("no class subfolders", "no class subfolders"),
        ("empty class folder", "class folder has no images"),
        ("archive not there", "CIFAR-10 not found or incomplete"),
        ("download without network", "downloading CIFAR-10 into"),
    ],
)
def test_one_clear_error_and_nothing_partial(workdir, prefect_api, case, message):
    data = workdir / "userdata" / case.replace(" ", "-")
    env = None
    dataset = f"{{source: imagefolder, root: {data}}}"
    if case in ("empty folder", "no class subfolders", "empty class folder"):
        data.mkdir(parents=True)
    if case == "no class subfolders":
        (data / "loose.png").write_bytes(b"\x89PNG")
    if case == "empty class folder":
        (data / "cats").mkdir()
    if case == "archive not there":
        dataset = f"{{source: cifar10, root: {data}}}"
    if case == "download without network":
        dataset = f"{{source: cifar10, root: {data}, download: true}}"
        env = no_proxy_network()
    r = prepare(workdir, prefect_api, dataset, env)
    assert r.returncode == 2, r.stdout + r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    prepared = workdir / "data" / "prepared"
    assert not prepared.exists() or not any(prepared.iterdir())

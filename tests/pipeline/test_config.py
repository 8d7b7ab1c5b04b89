"""params.yaml's checks as commands: `python -m flows.check` prints one line and exits 2, and a
fresh interpreter imports the config without a warning (tests/simclr/test_config.py: the rest)."""

import subprocess
import sys

from helpers import ROOT

from simclr.config import (
    PretrainConfig,
)


def test_check_command_prints_one_line_and_exits_2(tmp_path):
    (tmp_path / "params.yaml").write_text("pretrain:\n  epochz: 3\n")
    r = subprocess.run(
        [sys.executable, "-m", "flows.check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: params.yaml: unknown key 'pretrain.epochz'; allowed: "
        + ", ".join(sorted(PretrainConfig.model_fields))
    ]
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    ok = subprocess.run(
        [sys.executable, "-m", "flows.check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "params.yaml: ok"


def test_importing_the_config_warns_of_nothing():
    r = subprocess.run(
        [sys.executable, "-W", "error", "-c", "import simclr.config"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr

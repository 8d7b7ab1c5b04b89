"""simclr/io.py against a truly read-only place: where it can, a read-only tmpfs mounted in a
mount namespace of its own (a child process); otherwise a folder without write permission."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from simclr.errors import PipelineError
from simclr.io import check_target


def test_a_read_only_place_is_refused_before_any_work_naming_the_target(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            with pytest.raises(PipelineError, match=r"ro/x\.md: cannot write it: .*not writable"):
                check_target(folder / "x.md")
        finally:
            folder.chmod(0o755)
        return
    if not shutil.which("unshare"):
        pytest.skip("root without unshare: no read-only file system to test on")
    # As root permissions do not bind: a read-only tmpfs in a mount namespace of its own, which
    # vanishes with the process.
    code = (
        "import sys; from simclr.io import write_text; from flows.errors import user_errors\n"
        "with user_errors(): write_text(sys.argv[1] + '/x.md', 'x')"
    )
    script = f'mount -t tmpfs -o ro none "$1" && exec "{sys.executable}" -c "$2" "$1"'
    r = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, "sh", str(folder), code],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "mount" in r.stderr and r.returncode != 2:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    assert r.returncode == 2
    assert r.stderr == (
        f"error: {folder}/x.md: cannot write it: {folder} is on a read-only file system; use a "
        "writable place\n"
    )

"""`simclr embed` as a real command on real photographs: a bad file named in one line (or
skipped on request), and a user's folder never written over (tests/simclr/test_embed.py: the
library in-process)."""

from __future__ import annotations

import subprocess

import pandas as pd
from helpers import BIN, tree_digest


def test_simclr_embed_command_names_a_bad_file_in_one_line_and_skips_it_on_request(
    checkpoint, photos, tmp_path
):
    (photos / "others" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    out = tmp_path / "h.parquet"
    cmd = [str(BIN / "simclr"), "embed", str(photos), str(out), "--checkpoint", str(checkpoint)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.count("\n") == 1 and "others/broken.png: cannot decode image" in r.stderr
    assert "--skip-bad" in r.stderr and not out.exists()
    r = subprocess.run([*cmd, "--skip-bad"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "embedded 8 images" in r.stdout and "images/s" in r.stdout
    assert "skipped 1 file(s)" in r.stdout and "others/broken.png" in r.stderr
    assert len(pd.read_parquet(out)) == 8


def test_simclr_embed_never_writes_over_a_folder_and_refuses_before_reading_the_checkpoint(
    tmp_path, photos
):
    keep = tmp_path / "keep"
    (keep / "sub").mkdir(parents=True)
    (keep / "a.parquet").write_bytes(b"precious")
    before = tree_digest(keep)
    missing = tmp_path / "no-such-checkpoint.pt"  # not read: the output is refused first
    for out, said in (
        (keep, f"{keep}: is a folder, where a file is written; name a file"),
        (keep / "a.parquet" / "h.parquet", f"{keep}/a.parquet is a file, not a folder"),
    ):
        cmd = [str(BIN / "simclr"), "embed", str(photos), str(out), "--checkpoint", str(missing)]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
        assert r.stderr.startswith("error: ") and said in r.stderr
    assert tree_digest(keep) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep", "photos"]

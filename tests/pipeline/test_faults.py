"""Faults and bad input, each injected for real (docs/faults.md's table cites these tests): a
SIGKILL in every stage, damaged and malicious checkpoints, a full disk, bad params. Nothing
finished is lost, nothing partial passes for finished, and every error is one line that says
what to do."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MODEL, ROOT, TINY_PARAMS, cfg, copy_code, pretrain_run, pythonpath, tiny_images

import flows.cli as cli
import simclr.train as train_module
from simclr.checkpoint import (
    load_encoder,
    load_state,
    unseal,
)
from simclr.config import load_params
from simclr.errors import PipelineError
from simclr.io import remove_stale_temporaries, write_text
from simclr.train import pretrain

HOOKS = Path(__file__).parent / "fault_hooks"  # sitecustomize.py: SIGKILL / ENOSPC on demand


def temporaries(root: Path) -> list[Path]:
    """What simclr.io's atomic writes leave beside a target when killed: `.<name>.*.tmp`, and
    `.<name>.*.old` (an old tree set aside)."""
    return sorted([*root.rglob(".*.tmp"), *root.rglob(".*.old")])


# ---------------------------------------------------------------------------------------------
# SIGKILL in each stage: the real stage command, killed at the instant it would rename its
# output into place (the last moment of writing it), then run again.

# Every output each stage declares in dvc.yaml, for the tiny params (datasets digits and faces).
OUTPUTS = {
    "prepare": ["data/prepared/digits", "data/prepared/faces"],
    "validate": [
        "reports/validation/results/digits.json",
        "reports/validation/results/faces.json",
        "reports/validation/docs",
    ],
    "pretrain": [
        "models/simclr-0.pt",
        "reports/pretrain/0/metrics.json",
        "reports/pretrain/0/plots/metrics",
        "reports/pretrain/0/run.json",
        "reports/pretrain/0/views.png",
    ],
    "evaluate": [
        "reports/evaluate/0/details.json",
        "reports/evaluate/0/embedding.png",
        "reports/evaluate/0/confusion.png",
    ],
    "transfer": ["reports/transfer/faces/0/details.json"],
    "summarize": ["reports/summary.json", "reports/metrics.json"],
    "report": [
        "reports/report.md",
        "reports/report.html",
        "reports/figures/curves.png",
        "reports/figures/fractions.png",
        "reports/figures/samples.png",
        "reports/plots/linear_fractions.csv",
    ],
}
# The tiny pipeline with one replica and the cheapest evaluation: the faults, not the numbers,
# are under test.
_head, _, _evaluate = TINY_PARAMS.replace("replicas: [0, 1]", "replicas: [0]").partition(
    "evaluate:\n"
)
PARAMS = (
    _head
    + "evaluate: {fractions: [1.0], seeds: 1, C: [1.0], knn_k: 5, finetune: {epochs: 0}}\n"
    + _evaluate[_evaluate.index("transfer:") :]
)
# (stage, command, the output whose rename the kill interrupts)
KILLS = [
    ("prepare", ["flows.prepare", "digits"], "data/prepared/digits"),
    ("validate", ["flows.validate"], "reports/validation/results/digits.json"),
    ("pretrain", ["flows.pretrain", "0"], "models/simclr-0.pt"),
    ("evaluate", ["flows.evaluate", "0"], "reports/evaluate/0/details.json"),
    ("transfer", ["flows.transfer", "faces", "0"], "reports/transfer/faces/0/details.json"),
    ("summarize", ["flows.summarize"], "reports/metrics.json"),
    ("report", ["flows.report"], "reports/report.html"),
]


def problem(path: Path) -> str | None:
    """Why `path` is not a complete output (None: it is complete). Each kind is read the way
    the next stage or a person reads it."""
    import pandas as pd
    from PIL import Image

    from simclr.data.prepared import load_manifest, load_prepared

    try:
        if path.parent.name == "prepared":
            data = load_prepared(path, mmap=False)
            manifest = load_manifest(path)
            if len(manifest[manifest["index"] >= 0]) != len(data.train.labels) + len(
                data.test.labels
            ):
                return "manifest and arrays disagree"
        elif path.name == "docs":
            if not (path / "index.html").read_text().rstrip().endswith("</html>"):
                return "index.html incomplete"
        elif path.is_dir():
            for tsv in path.glob("*.tsv"):
                pd.read_csv(tsv, sep="\t")
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".pt":
            load_encoder(path, torch.device("cpu"))
        elif path.suffix == ".png":
            with Image.open(path) as img:
                img.load()
        elif path.suffix == ".html":
            if not path.read_text().rstrip().endswith("</html>"):
                return "no closing </html>"
        elif path.suffix == ".csv":
            pd.read_csv(path)
        elif path.suffix == ".md" and not path.read_text().strip():
            return "empty"
    except Exception as e:  # anything a reader would trip on
        return f"{type(e).__name__}: {e}"
    return None


def incomplete(root: Path) -> dict[str, str]:
    """Outputs of every stage that exist but are not complete."""
    found = {}
    for outs in OUTPUTS.values():
        for out in outs:
            if (root / out).exists() and (why := problem(root / out)):
                found[out] = why
    return found


@pytest.fixture(scope="module")
def killed_stages(tmp_path_factory, prefect_api):
    """Every stage in turn: run with a SIGKILL at its output's rename, record what is on disk,
    run it again. Returns the workdir and, per stage, what each step left."""
    root = tmp_path_factory.mktemp("faults")
    copy_code(root)
    (root / "params.yaml").write_text(PARAMS)
    env = {**os.environ, "PYTHONPATH": pythonpath(HOOKS), "PREFECT_API_URL": prefect_api}

    def run(args, **extra):
        return subprocess.run(
            [sys.executable, "-m", *args],
            cwd=root,
            env={**env, **extra},
            capture_output=True,
            text=True,
            timeout=300,
        )

    # The second dataset first, so that a finished output is on disk when prepare is killed.
    other = run(["flows.prepare", "faces"])
    assert other.returncode == 0, other.stdout + other.stderr
    records = {}
    for stage, args, target in KILLS:
        killed = run(args, SIMCLR_FAULT_KILL=target)
        after_kill = {
            "returncode": killed.returncode,
            "output": killed.stdout + killed.stderr,
            "target_exists": (root / target).exists(),
            "temporaries": [p.name for p in temporaries(root)],
            "incomplete": incomplete(root),
        }
        rerun = run(args)
        records[stage] = {
            "target": target,
            "killed": after_kill,
            "rerun": {
                "returncode": rerun.returncode,
                "output": rerun.stdout + rerun.stderr,
                "missing": [o for o in OUTPUTS[stage] if not (root / o).exists()],
                "incomplete": incomplete(root),
                "temporaries": [str(p.relative_to(root)) for p in temporaries(root)],
            },
        }
        if rerun.returncode != 0:
            break
    return root, records, run


@pytest.mark.e2e
@pytest.mark.parametrize("stage", [stage for stage, _, _ in KILLS])
def test_sigkill_in_a_stage_leaves_no_partial_output_and_a_rerun_completes(killed_stages, stage):
    _, records, _ = killed_stages
    assert stage in records, f"not reached: an earlier stage's rerun failed: {records}"
    r = records[stage]
    killed, rerun = r["killed"], r["rerun"]
    assert killed["returncode"] == -signal.SIGKILL, killed["output"]
    # Killed with the new output complete under its temporary name: nothing at the output path,
    # and every output of every stage that does exist is whole.
    assert not killed["target_exists"], r["target"]
    assert killed["temporaries"], "the kill should have left the temporary it was renaming"
    assert killed["incomplete"] == {}
    assert rerun["returncode"] == 0, rerun["output"]
    assert rerun["missing"] == [] and rerun["incomplete"] == {}
    assert rerun["temporaries"] == []  # the rerun removed what the killed process left


@pytest.mark.e2e
def test_pretrain_rerun_after_a_kill_continues_from_the_saved_state(killed_stages):
    root, records, _ = killed_stages
    assert records.get("pretrain", {}).get("rerun", {}).get("returncode") == 0
    # Killed after its last epoch: the rerun restores all epochs and trains none again.
    state = torch.load(root / "models/simclr-0.pt", weights_only=True)
    assert pretrain_run(root)["resumed_from_epoch"] == len(state["history"]) == 2
    assert not list((root / ".resume").glob("*.pt"))


@pytest.mark.e2e
def test_disk_full_while_writing_the_report_keeps_the_previous_one(killed_stages):
    root, records, run = killed_stages
    assert records.get("report", {}).get("rerun", {}).get("returncode") == 0
    before = (root / "reports/report.html").read_bytes()
    r = run(["flows.report"], SIMCLR_FAULT_ENOSPC="report.html")
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    (error,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: reports/report.html: disk full while writing it")
    assert "the previous one is kept; free space on" in error
    assert (root / "reports/report.html").read_bytes() == before
    assert temporaries(root) == []


@pytest.mark.e2e
def test_damaged_checkpoint_stops_evaluate_in_one_line(killed_stages):
    root, records, run = killed_stages
    assert records.get("report", {}).get("rerun", {}).get("returncode") == 0
    checkpoint = root / "models/simclr-0.pt"
    good = checkpoint.read_bytes()
    before = (root / "reports/evaluate/0/details.json").read_bytes()
    try:
        checkpoint.write_bytes(good[: len(good) // 2])  # truncated, as by a failed copy
        r = run(["flows.evaluate"])
    finally:
        checkpoint.write_bytes(good)
    assert r.returncode == 2, r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr
    (error,) = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith("error: models/simclr-0.pt: not a readable checkpoint (truncated")
    assert "re-run the pretrain stage" in error
    assert (root / "reports/evaluate/0/details.json").read_bytes() == before


@pytest.mark.e2e
def test_bad_params_stop_a_real_stage_before_it_reads_anything(tmp_path, prefect_api):
    copy_code(tmp_path)
    (tmp_path / "params.yaml").write_text(
        TINY_PARAMS.replace("batch_size: 32", "batch_size: 32\n  temperature: 0")
    )
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    r = subprocess.run(
        [sys.executable, "-m", "flows.prepare", "digits"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: " + str(error_of(tmp_path / "params.yaml"))], (
        r.stderr
    )
    assert "pretrain.temperature" in r.stderr
    assert not (tmp_path / "data").exists()


# ---------------------------------------------------------------------------------------------
# Disk full while writing: a writer that writes part of the file, then fails as a full disk.


# A real write failure: the child process lowers its file-size limit (RLIMIT_FSIZE), so the
# kernel fails torch.save's writes with EFBIG, as a full disk fails them with ENOSPC (both are
# "disk full" errors to simclr/io.py); SIGXFSZ is ignored so the write fails instead of the
# process being killed.
LIMITED_WRITER = """
import resource, signal, sys
from pathlib import Path
import torch
from simclr.errors import PipelineError
from helpers import MODEL, cfg, tiny_images

def limit_writes(nbytes):
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, resource.RLIM_INFINITY))

path = Path(sys.argv[2])
try:
    if sys.argv[1] == "checkpoint":
        from simclr.checkpoint import save_checkpoint
        from simclr.models import build_model
        torch.manual_seed(1)
        encoder, head = build_model(1, 8, **MODEL)
        limit_writes(4096)
        save_checkpoint(path, encoder, head, MODEL, 8, {"dataset": "digits"})
    else:
        from simclr.train import pretrain
        def after_first_epoch(epoch, metrics):
            if epoch == 0:
                limit_writes(path.stat().st_size // 2)
        pretrain(tiny_images(), MODEL, cfg(epochs=3), seed=0, on_epoch=after_first_epoch,
                 resume_path=path)
except PipelineError as e:
    print(e)
    sys.exit(3)
"""


def _write_with_a_size_limit(what: str, path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": pythonpath(ROOT, ROOT / "tests")}
    cmd = [sys.executable, "-c", LIMITED_WRITER, what, str(path)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def test_disk_full_while_writing_the_checkpoint_keeps_the_previous_one(tmp_path, good_checkpoint):
    path = tmp_path / "models" / "simclr.pt"
    path.parent.mkdir()
    path.write_bytes(good_checkpoint.read_bytes())
    r = _write_with_a_size_limit("checkpoint", path)
    assert r.returncode == 3, r.stdout + r.stderr
    (line,) = r.stdout.splitlines()
    assert line.startswith(f"{path}: disk full while writing it (File too large)")
    assert "the previous one is kept" in line
    assert path.read_bytes() == good_checkpoint.read_bytes()
    assert temporaries(tmp_path) == []
    load_encoder(path, torch.device("cpu"))


def test_disk_full_while_saving_the_resumable_state_keeps_the_last_epoch(tmp_path):
    state = tmp_path / "resume.pt"
    r = _write_with_a_size_limit("resume", state)
    assert r.returncode == 3, r.stdout + r.stderr
    (line,) = r.stdout.splitlines()
    assert line.startswith(f"{state}: disk full while writing it (File too large)")
    assert temporaries(tmp_path) == []
    kept = unseal(load_state(state), state, train_module.RESUME_KEYS)  # whole: its sha256 holds
    assert len(kept["history"]) == 1
    resumed = pretrain(tiny_images(), MODEL, cfg(epochs=3), seed=0, resume_path=state)
    assert resumed.resumed_from == 1 and len(resumed.history) == 3


def test_disk_full_while_writing_a_report_keeps_the_previous_one(tmp_path, monkeypatch):
    report = tmp_path / "reports" / "report.md"
    write_text(report, "# the previous report\n")
    real = Path.write_text

    def half_then_full(self, data, *args, **kwargs):
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self))

    monkeypatch.setattr(Path, "write_text", half_then_full)
    with pytest.raises(PipelineError, match=r"report\.md: disk full while writing it"):
        write_text(report, "# a new report\n" * 100)
    monkeypatch.setattr(Path, "write_text", real)
    assert report.read_text() == "# the previous report\n"
    assert temporaries(tmp_path) == []


def test_temporaries_of_a_dead_writer_are_removed_and_a_live_ones_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "metrics.json"
    left = tmp_path / f".metrics.json.{dead.pid}.abc123.tmp"
    left.write_text("{")
    mine = tmp_path / f".metrics.json.{os.getpid()}.def456.tmp"
    mine.write_text("{")
    other = tmp_path / f".metrics.json.7.{dead.pid}.ghi789.tmp"  # target "metrics.json.7"
    other.write_text("{")
    assert remove_stale_temporaries(target) == [left]
    assert mine.exists() and other.exists()


def test_a_reused_pid_does_not_keep_a_dead_runs_temporary(tmp_path):
    # Our own pid, on a file last changed long before this process started: the pid was reused
    # (a new container, a rebooted machine), and the writer is gone.
    target = tmp_path / "simclr.pt"
    old = tmp_path / f".simclr.pt.{os.getpid()}.abc123.tmp"
    old.write_bytes(b"half")
    os.utime(old, (1e9, 1e9))  # 2001
    fresh = tmp_path / f".simclr.pt.{os.getpid()}.def456.tmp"
    fresh.write_bytes(b"being written")
    odd = tmp_path / f".simclr.pt.{10**30}.ghi789.tmp"  # not a pid: left alone, no error
    odd.write_bytes(b"?")
    assert remove_stale_temporaries(target) == [old]
    assert fresh.exists() and odd.exists()


def test_a_directory_replacement_stopped_between_its_renames_keeps_the_old_tree(
    tmp_path, monkeypatch
):
    import simclr.io as io_module

    target = tmp_path / "prepared"
    target.mkdir()
    (target / "train.npy").write_text("old")
    real_replace, calls = os.replace, []

    def stopped_after_the_first(src, dst):  # e.g. a KeyboardInterrupt or SIGTERM right then
        real_replace(src, dst)
        calls.append(dst)
        if len(calls) == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(io_module.os, "replace", stopped_after_the_first)
    with pytest.raises(KeyboardInterrupt), io_module.atomic_path(target, tree=True) as tmp:
        tmp.mkdir()
        (tmp / "train.npy").write_text("new")
    monkeypatch.setattr(io_module.os, "replace", real_replace)
    assert (target / "train.npy").read_text() == "old"
    assert temporaries(tmp_path) == []


def test_an_old_tree_set_aside_by_a_killed_writer_comes_back(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    target = tmp_path / "prepared"
    aside = tmp_path / f".prepared.{dead.pid}.abc123.old"  # killed between its two renames
    aside.mkdir()
    (aside / "train.npy").write_text("old")
    remove_stale_temporaries(target)
    assert (target / "train.npy").read_text() == "old" and not aside.exists()


# ---------------------------------------------------------------------------------------------
# Image folders with every odd kind of file, through the loader the prepare stage uses.


def png16(path: Path, pixels: np.ndarray) -> Path:
    """A 16-bit PNG (gray, gray+alpha, RGB or RGBA by the channel count), written by hand:
    Pillow writes 16 bits for grayscale only."""
    import struct
    import zlib

    h, w, c = pixels.shape
    raw = b"".join(b"\0" + pixels[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", w, h, 16, {1: 0, 2: 4, 3: 2, 4: 6}[c], 0, 0, 0)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )
    return path


def odd_folder(root: Path) -> dict[str, object]:
    """One file of each kind users bring; per file, what its pixels must become (RGB)."""
    from PIL import Image

    def save(name, mode, size, color, **kwargs):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new(mode, size, color).save(root / name, **kwargs)

    save("a/rgba.png", "RGBA", (8, 6), (10, 200, 30, 40))
    save("a/large.png", "RGB", (40, 30), (90, 60, 30))  # mixed sizes: resized to image_size
    save("a/palette.png", "P", (6, 6), 3)
    save("b/cmyk.jpg", "CMYK", (8, 8), (0, 255, 255, 0), quality=95)  # red ink
    save("b/gray16.png", "I;16", (8, 8), 40000)
    png16(root / "b/rgb16.png", np.tile(np.array([65535, 32768, 2570], np.uint16), (8, 8, 1)))
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)  # stored sideways: red left, blue right
    pixels[:, :10] = [255, 0, 0]
    pixels[:, 10:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display": upright, red is on top
    Image.fromarray(pixels).save(root / "b/exif.jpg", exif=exif, quality=95)
    palette = Image.open(root / "a/palette.png").convert("RGB").getpixel((0, 0))
    return {
        "a/rgba.png": [10, 200, 30],  # alpha dropped, colour kept
        "a/large.png": [90, 60, 30],
        "a/palette.png": list(palette),
        "b/cmyk.jpg": "red",
        "b/gray16.png": [156, 156, 156],  # 40000 / 257: scaled, not clipped to white
        "b/rgb16.png": [255, 128, 10],
        "b/exif.jpg": "red on top",
    }


def test_odd_image_files_are_read_upright_as_rgb_at_one_size(tmp_path):
    from simclr.config import DataConfig, DatasetConfig
    from tasks.sources import load_dataset

    expected = odd_folder(tmp_path / "photos")
    cfg = DatasetConfig(source="imagefolder", root=str(tmp_path / "photos"))
    source = load_dataset(cfg, DataConfig(image_size=8, workers=1), seed=0)
    assert source.rejected == () and source.images.shape == (7, 8, 8, 3)
    for path, image in zip(source.paths, source.images, strict=True):
        want = expected[Path(path).relative_to(tmp_path / "photos").as_posix()]
        if want == "red":
            r, g, b = image.reshape(-1, 3).mean(axis=0)
            assert r > 200 and g < 60 and b < 60, path
        elif want == "red on top":
            top, bottom = image[1].mean(axis=0), image[6].mean(axis=0)
            assert top[0] > 200 and top[2] < 60 and bottom[2] > 200 and bottom[0] < 60
        else:
            assert np.abs(image.astype(int) - want).max() <= 1, (path, image[0, 0])


def test_image_without_a_faithful_8_bit_form_is_refused_naming_the_file(tmp_path):
    from PIL import Image

    from simclr.data.imagefolder import load_image_folder

    (tmp_path / "a").mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(tmp_path / "a" / "ok.png")
    bad = tmp_path / "a" / "depth.tiff"
    Image.fromarray(np.full((8, 8), 0.5, np.float32), "F").save(bad)
    with pytest.raises(PipelineError) as e:
        load_image_folder(tmp_path, workers=1)
    assert str(e.value) == (
        f"{bad}: cannot decode image (32-bit floating-point (mode F) images are not "
        "supported; save it as 8- or 16-bit grayscale, RGB, RGBA or CMYK); replace or delete "
        "the file"
    )
    lenient = load_image_folder(tmp_path, workers=1, strict=False)  # what prepare does
    assert [(p, reason[:30]) for p, _, reason in lenient.rejected] == [
        ("a/depth.tiff", "32-bit floating-point (mode F)")
    ]


# ---------------------------------------------------------------------------------------------
# Bad params: one error line before any work, naming the key, the value and what is allowed.

ONE_DATASET = "datasets: {digits: {source: digits}}\ntransfer: {datasets: []}\n"


def error_of(path: Path) -> PipelineError:
    with pytest.raises(PipelineError) as e:
        load_params(path)
    return e.value


# (params, key, value as the message shows it, what is allowed)
BAD_TYPES = [
    ("pretrain: {temprature: 0.5}", "'pretrain.temprature'", None, "allowed: augment, "),
    ("pretrain: {batch_size: big}", "pretrain.batch_size", "'big'", "an integer in [2, 65536]"),
    ("pretrain: {temperature: [0.5]}", "pretrain.temperature", "[0.5]", "a finite number"),
    ("evaluate: {fractions: 0.1}", "evaluate.fractions", "0.1", "a non-empty list of"),
    ("pretrain: {optimizer: adam}", "pretrain.optimizer", "'adam'", "sgd"),
]
OUT_OF_RANGE = [
    ("pretrain: {temperature: 0}", "pretrain.temperature", "0", "a finite number > 0"),
    ("pretrain: {temperature: -0.5}", "pretrain.temperature", "-0.5", "a finite number > 0"),
    ("pretrain: {batch_size: 1}", "pretrain.batch_size", "1", "an integer in [2, 65536]"),
    ("evaluate: {fractions: [0, 0.5]}", "evaluate.fractions[0]", "0", "(0, 1]"),
    ("evaluate: {fractions: [0.5, 1.5]}", "evaluate.fractions[1]", "1.5", "(0, 1]"),
    ("evaluate: {finetune: {batch_size: 1}}", "evaluate.finetune.batch_size", "1", "in [2, 65536]"),
    ("model: {proj_hidden_dim: 0}", "model.proj_hidden_dim", "0", "an integer in (0, 32768]"),
]


def ids(cases):
    return [f"{key.strip(chr(39))}={value}" for _, key, value, _ in cases]


@pytest.mark.parametrize(
    ("text", "key", "value", "allowed"), BAD_TYPES + OUT_OF_RANGE, ids=ids(BAD_TYPES + OUT_OF_RANGE)
)
def test_bad_params_stop_a_stage_before_any_work_in_one_line(
    tmp_path, monkeypatch, capsys, text, key, value, allowed
):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(ONE_DATASET + text + "\n")
    monkeypatch.setattr(cli, "check_api", lambda: None)
    ran = []
    with pytest.raises(SystemExit) as e:
        cli.run_stage(lambda *args, **kwargs: ran.append(args))
    assert e.value.code == 2 and ran == []
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: params.yaml: ")
    assert key in line and allowed in line
    if (text, key, value, allowed) in BAD_TYPES and value is not None:
        assert value in line


@pytest.mark.parametrize(("text", "key", "value", "allowed"), OUT_OF_RANGE, ids=ids(OUT_OF_RANGE))
def test_out_of_range_params_name_the_value(tmp_path, text, key, value, allowed):
    (tmp_path / "params.yaml").write_text(ONE_DATASET + text + "\n")
    message = str(error_of(tmp_path / "params.yaml"))
    assert f"{key} = {value}; allowed: " in message and allowed in message


def test_a_folder_named_as_the_checkpoint_is_said_to_be_one(tmp_path):
    with pytest.raises(PipelineError, match="a folder, not a checkpoint file; name the .pt file"):
        load_encoder(tmp_path, torch.device("cpu"))

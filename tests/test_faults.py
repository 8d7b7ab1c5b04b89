"""Faults and bad input, each injected for real (issue 9; the README's "Faults and what survives
them" table cites these tests): a SIGKILL in every stage, damaged and malicious checkpoints, a
full disk, bad params. Nothing finished is lost, nothing partial passes for finished, and every
error is one line that says what to do."""

from __future__ import annotations

import errno
import json
import os
import pickle
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import MODEL, ROOT, TINY_PARAMS, cfg, copy_code, pretrain_run, pythonpath, tiny_images

import flows.cli as cli
import simclr.checkpoint as checkpoint_module
import simclr.train as train_module
from flows.errors import explain
from simclr.checkpoint import (
    REQUIRED,
    load_encoder,
    load_state,
    save_checkpoint,
    save_state,
    unseal,
)
from simclr.config import MAX_CHANNELS, MAX_IMAGE_SIZE, ModelConfig, load_params, to_dict
from simclr.errors import PipelineError
from simclr.io import remove_stale_temporaries, write_text
from simclr.models import Encoder, build_model
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
# Damaged, foreign and malicious checkpoints.


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    encoder, head = build_model(1, 8, **MODEL)
    path = tmp_path_factory.mktemp("checkpoint") / "simclr.pt"
    return save_checkpoint(path, encoder, head, MODEL, 8, {"dataset": "digits"})


def flip_a_weight_byte(data: bytes) -> bytes:
    """The checkpoint with one byte of a conv weight's data flipped: still a valid archive."""
    state = torch.load(__import__("io").BytesIO(data), weights_only=True)
    weight = state["encoder"]["net.0.0.weight"].numpy().tobytes()
    at = data.find(weight)
    assert at >= 0
    damaged = bytearray(data)
    damaged[at + 5] ^= 0x40
    return bytes(damaged)


def mismatched(data: bytes) -> bytes:
    """A complete, well-formed checkpoint whose weights belong to another model config."""
    import io

    state = torch.load(io.BytesIO(data), weights_only=True)
    state.pop("sha256", None)
    other, _ = build_model(1, 8, widths=(4, 8), blocks=(1, 1))
    state["encoder"] = other.state_dict()
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: b"", r"not a readable checkpoint \(the file is empty\)"),
        (lambda d: d[:1], r"not a readable checkpoint \(truncated or damaged\)"),
        (lambda d: d[: len(d) // 2], r"not a readable checkpoint \(truncated or damaged"),
        (lambda d: d[:-1], r"not a readable checkpoint \(truncated or damaged"),
        (lambda d: b"\0" * 64 + d[64:], r"not a readable checkpoint \(truncated or damaged"),
        (flip_a_weight_byte, r"damaged: its contents do not match its sha256"),
        (mismatched, r"its weights do not fit its model config"),
    ],
    ids=["empty", "one-byte", "half", "last-byte-cut", "header-zeroed", "bit-flip", "mismatch"],
)
def test_damaged_checkpoint_is_one_clear_error(tmp_path, good_checkpoint, damage, message):
    bad = tmp_path / "simclr.pt"
    bad.write_bytes(damage(good_checkpoint.read_bytes()))
    with pytest.raises(PipelineError, match=message) as e:
        load_encoder(bad, torch.device("cpu"))
    text = explain(e.value)  # as a command prints it: the pipeline's advice added
    assert text.startswith(f"{bad}: ") and "\n" not in text and len(text) < 400
    assert "re-run the pretrain stage" in text and "re-run" not in str(e.value)


def test_foreign_torch_file_is_refused(tmp_path):
    other = tmp_path / "resnet.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(PipelineError, match="not a simclr-pipeline checkpoint"):
        load_encoder(other, torch.device("cpu"))


def resealed(tmp_path: Path, good: Path, **fields) -> Path:
    """The good checkpoint with `fields` changed and sealed again, as anyone can: a sha256
    shows that a file is whole, not who wrote it."""
    state = unseal(load_state(good), good, REQUIRED)
    return save_state({**state, **fields}, tmp_path / "resealed.pt")


def built_on_the_meta_device_only(*args, **kwargs):
    """Encoder, refusing to allocate: only shapes (the meta device) may be built."""
    if torch.empty(0).device.type != "meta":
        raise AssertionError("a model was allocated for a checkpoint that should be refused")
    return Encoder(*args, **kwargs)


WIDE = [MODEL["widths"][0], 10**9]


@pytest.mark.parametrize(
    ("fields", "shown"),
    [
        (
            {"image_size": 200_000},
            f"image_size = 200000; allowed: an integer in [4, {MAX_IMAGE_SIZE}]",
        ),
        ({"image_size": -3}, "image_size = -3; allowed: an integer in [4, "),
        ({"image_size": 0}, "image_size = 0; allowed: an integer in [4, "),
        ({"image_size": "16"}, "image_size = '16'; allowed: an integer in [4, "),
        ({"in_channels": 2}, "in_channels = 2; allowed: 1, 3"),
        (
            {"model": {**to_dict(ModelConfig(**MODEL)), "widths": WIDE}},
            f"model.widths[1] = 1000000000; allowed: an integer in (0, {MAX_CHANNELS}]",
        ),
    ],
    ids=["size-200000", "size-negative", "size-0", "size-string", "channels-2", "width-1e9"],
)
def test_a_resealed_checkpoint_with_a_field_params_refuse_is_refused_before_building(
    tmp_path, good_checkpoint, monkeypatch, fields, shown
):
    bad = resealed(tmp_path, good_checkpoint, **fields)
    monkeypatch.setattr(checkpoint_module, "Encoder", built_on_the_meta_device_only)
    start = time.perf_counter()
    with pytest.raises(PipelineError) as e:
        load_encoder(bad, torch.device("cpu"))
    assert time.perf_counter() - start < 0.5
    text = str(e.value)
    assert text.startswith(f"{bad}: checkpoint field: {shown}"), text
    assert "a value this pipeline never writes" in text and "not who wrote it" in text
    assert "re-run the pretrain stage" in explain(e.value) and "\n" not in explain(e.value)


def test_a_resealed_config_wider_than_its_weights_is_refused_before_building(
    tmp_path, good_checkpoint, monkeypatch
):
    """Widths within params' bounds, but not those of the weights the file holds: checked on
    the meta device, so the 38 GB the config asks for are never allocated."""
    wide = {**to_dict(ModelConfig(**MODEL)), "widths": [MAX_CHANNELS, MAX_CHANNELS]}
    bad = resealed(tmp_path, good_checkpoint, model=wide)
    monkeypatch.setattr(checkpoint_module, "Encoder", built_on_the_meta_device_only)
    with pytest.raises(PipelineError, match=r"do not fit its model config \(size mismatch for "):
        load_encoder(bad, torch.device("cpu"))


def test_weights_stored_as_a_few_bytes_that_claim_a_huge_shape_are_refused(
    tmp_path, good_checkpoint, monkeypatch
):
    """A zero-stride view is saved as its one value; made contiguous (by the digest) or copied
    into a model it would take the memory of its whole shape."""
    wide = ModelConfig(widths=(MAX_CHANNELS, MAX_CHANNELS), blocks=(1, 1))
    with torch.device("meta"):
        shapes = Encoder(1, 8, widths=wide.widths, blocks=wide.blocks).state_dict()
    state = unseal(load_state(good_checkpoint), good_checkpoint, REQUIRED)
    state["model"] = to_dict(wide)
    state["encoder"] = {
        k: torch.zeros((), dtype=t.dtype).expand(t.shape) for k, t in shapes.items()
    }
    bad = tmp_path / "views.pt"
    torch.save(state, bad)  # unsealed: a digest would make them contiguous
    assert bad.stat().st_size < 100_000
    monkeypatch.setattr(checkpoint_module, "Encoder", built_on_the_meta_device_only)
    with pytest.raises(PipelineError, match=r"encoder\.net\.\S+ holds fewer values than its shape"):
        load_encoder(bad, torch.device("cpu"))


@pytest.mark.parametrize(
    ("save", "protocol"),
    [
        (lambda state, path: path.write_bytes(pickle.dumps(state, protocol=5)), 5),
        (lambda state, path: torch.save(state, path, pickle_protocol=4), 4),
    ],
    ids=["plain-pickle-5", "torch-save-protocol-4"],
)
def test_a_file_of_another_pickle_protocol_is_one_line_without_torchs_warning(
    tmp_path, save, protocol
):
    path = tmp_path / "other.pt"
    save({"encoder": {}, "model": {}}, path)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        with pytest.raises(PipelineError) as e:
            load_encoder(path, torch.device("cpu"))
    assert [str(w.message) for w in shown] == []  # torch's two lines would precede ours
    assert explain(e.value).startswith(
        f"{path}: not a readable checkpoint (saved with pickle protocol {protocol}, which "
        "torch's weights-only loader does not read (this pipeline writes protocol 2)); re-run"
    )


class RunsCode:
    """Unpickling this calls os.mkdir(marker): the shape of any code-execution payload."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def payload_checkpoint(tmp_path: Path, good: Path) -> tuple[Path, Path]:
    """A real checkpoint with a code-running object slipped in; and the marker it would make."""
    marker = tmp_path / "payload-ran"
    state = torch.load(good, weights_only=True)
    state["provenance"] = RunsCode(marker)
    evil = tmp_path / "evil.pt"
    torch.save(state, evil)
    return evil, marker


def test_payload_is_live_when_loaded_unsafely(tmp_path, good_checkpoint):
    """The payload below is real: an unrestricted torch.load runs it."""
    evil, marker = payload_checkpoint(tmp_path, good_checkpoint)
    torch.load(evil, weights_only=False)
    assert marker.is_dir()


def test_checkpoint_with_a_code_payload_is_refused_and_the_code_never_runs(
    tmp_path, good_checkpoint
):
    evil, marker = payload_checkpoint(tmp_path, good_checkpoint)
    with pytest.raises(PipelineError) as e:
        load_encoder(evil, torch.device("cpu"))
    text = str(e.value)
    assert text.startswith(f"{evil}: refused: it holds a pickled object (posix.mkdir)")
    assert "weights_only=False" not in text  # never torch's advice to load it unsafely
    assert not marker.exists()


def test_resumable_state_with_a_code_payload_is_ignored_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    state = tmp_path / "resume.pt"
    torch.save({"encoder": RunsCode(marker)}, state)
    r = pretrain(tiny_images(), MODEL, cfg(epochs=1), seed=0, resume_path=state)
    assert r.resumed_from == 0 and not marker.exists()


def test_truncated_resumable_state_restarts_training_from_scratch(tmp_path, caplog):
    state = tmp_path / "resume.pt"

    def stop_after_first(epoch, metrics):
        if epoch == 0:
            raise KeyboardInterrupt  # as if killed after epoch 1 was saved

    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_images(), MODEL, cfg(), seed=0, on_epoch=stop_after_first, resume_path=state)
    state.write_bytes(state.read_bytes()[:1000])
    with caplog.at_level("WARNING", logger="simclr.train"):
        restarted = pretrain(tiny_images(), MODEL, cfg(), seed=0, resume_path=state)
    assert restarted.resumed_from == 0 and len(restarted.history) == 2
    assert any("unreadable resumable state" in m for m in caplog.messages)
    fresh = pretrain(tiny_images(), MODEL, cfg(), seed=0)
    assert [h["loss"] for h in restarted.history] == [h["loss"] for h in fresh.history]
    for k, v in fresh.encoder.state_dict().items():
        assert torch.equal(v, restarted.encoder.state_dict()[k]), k


@pytest.mark.parametrize("damage", ["foreign", "bit-flip"])
def test_damaged_but_loadable_resumable_state_restarts_training(tmp_path, caplog, damage):
    state = tmp_path / "resume.pt"
    if damage == "foreign":  # loads as weights, but is not a training state
        torch.save({"encoder": {"w": torch.zeros(2)}, "history": []}, state)
    else:  # a flipped bit in the weights of a real state saved after epoch 1
        pretrain(tiny_images(), MODEL, cfg(epochs=1), seed=0, resume_path=state)
        state.write_bytes(flip_a_weight_byte(state.read_bytes()))
    with caplog.at_level("WARNING", logger="simclr.train"):
        r = pretrain(tiny_images(), MODEL, cfg(), seed=0, resume_path=state)
    assert r.resumed_from == 0 and len(r.history) == 2
    assert any("unreadable resumable state" in m for m in caplog.messages)


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

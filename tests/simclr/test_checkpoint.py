"""simclr/checkpoint.py: a checkpoint and the resumable state saved and loaded back whole; a
damaged, foreign, resealed or code-carrying file refused in one line before anything is
built from it (the README's "Faults and what survives them" table cites these tests; a real
stage meeting a damaged checkpoint: tests/pipeline/test_faults.py)."""

from __future__ import annotations

import os
import pickle
import time
import warnings
from pathlib import Path

import pytest
import torch
from helpers import MODEL, cfg, tiny_images

import simclr.checkpoint as checkpoint_module
from flows.errors import explain
from simclr.checkpoint import (
    REQUIRED,
    digest,
    load_encoder,
    load_state,
    save_state,
    seal,
    unseal,
)
from simclr.config import MAX_CHANNELS, MAX_IMAGE_SIZE, ModelConfig, to_dict
from simclr.errors import PipelineError
from simclr.models import Encoder, build_model
from simclr.train import pretrain


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


def test_a_state_saved_is_loaded_back_whole_and_a_changed_value_breaks_its_seal(tmp_path):
    state = {"encoder": {"w": torch.arange(6.0).reshape(2, 3)}, "epochs": 3, "note": "x"}
    path = save_state(state, tmp_path / "state.pt")
    loaded = load_state(path)
    assert loaded["sha256"] == digest(state)  # sealed with the sha256 of its contents
    body = unseal(loaded, path, {"encoder"})
    assert body.keys() == state.keys() and body["epochs"] == 3 and body["note"] == "x"
    assert torch.equal(body["encoder"]["w"], state["encoder"]["w"])
    tampered = {**loaded, "epochs": 4}  # the digest no longer matches the contents
    with pytest.raises(PipelineError, match=r"state\.pt: damaged: its contents do not match"):
        unseal(tampered, path, {"encoder"})
    with pytest.raises(PipelineError, match="not a simclr-pipeline checkpoint"):
        unseal(loaded, path, {"encoder", "head"})


def test_the_digest_sees_every_value_and_no_order(tmp_path):
    a = {"x": torch.zeros(3), "y": [1, 2]}
    assert digest(a) == digest({"y": [1, 2], "x": torch.zeros(3)})  # key order is not content
    assert digest(a) != digest({"x": torch.zeros(3, dtype=torch.float64), "y": [1, 2]})
    assert digest(a) != digest({"x": torch.zeros(1, 3), "y": [1, 2]})
    assert digest(a) != digest({"x": torch.zeros(3), "y": [2, 1]})
    assert digest(seal(a)) == digest(a)  # the stored digest is not part of what it covers


def test_a_checkpoint_gives_back_the_encoder_it_saved_and_its_metadata(tmp_path, good_checkpoint):
    encoder, meta = load_encoder(good_checkpoint, torch.device("cpu"))
    assert not encoder.training and meta["dataset"] == "digits" and meta["image_size"] == 8
    state = load_state(good_checkpoint)
    for key, value in encoder.state_dict().items():
        assert torch.equal(value, state["encoder"][key]), key

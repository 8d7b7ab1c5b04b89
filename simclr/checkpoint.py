"""The pretrained checkpoint: encoder and head weights, their model config and what else the
caller adds (the pretrain stage: its params and the computed per-epoch metrics).

What loading a file proves, and what it does not:

- The sha256 of its contents (`seal`, checked by `unseal`) proves integrity: a file damaged
  after it was written (a flipped bit, a cut copy) is refused instead of giving silently
  different weights. It proves nothing about origin: it is no signature, anyone can recompute
  it for a file they made or edited.
- torch's weights_only unpickler (`load_state`) keeps a foreign file from running code: one
  holding a pickled object that would is refused.
- The fields that size what loading allocates (image_size, in_channels, the model config) are
  checked with params.yaml's bounds and against the weights the file holds (`check_fields`,
  `load_encoder`), so a foreign file cannot make loading or preprocessing take unbounded memory.
"""

from __future__ import annotations

import errno
import hashlib
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, get_args

import torch
from pydantic import BaseModel, ConfigDict, ValidationError

from simclr.config import DataConfig, ModelConfig, to_dict
from simclr.config_errors import one_line
from simclr.errors import Damaged, NotFound, PipelineError
from simclr.io import write_atomic
from simclr.models import ENCODER_KEYS, Encoder

DIGEST = "sha256"
# Reading errors that are the machine's, not the file's (torch reports a truncated file as
# EINVAL or as one of several other exception types)
MACHINE_ERRNOS = {errno.EIO, errno.ENOMEM, errno.EACCES, errno.EPERM, errno.ESTALE, errno.EINTR}
REQUIRED = frozenset({"model", "in_channels", "image_size", "encoder"})
ABOUT = "checkpoint"  # what its errors are about (PipelineError.about)
FOREIGN = (
    "a value this pipeline never writes: the file was made by something else or altered (its "
    "sha256 shows that it is whole, not who wrote it)"
)


def _as_required(model: type[BaseModel], name: str):
    """The type and bounds of params' field `name` of `model`, without null: a checkpoint
    field is held to what params.yaml allows for the value it came from."""
    info = model.model_fields[name]
    args = get_args(info.annotation)
    tp = next(a for a in args if a is not type(None)) if type(None) in args else info.annotation
    return Annotated[(tp, *info.metadata)] if info.metadata else tp


ImageSize = _as_required(DataConfig, "image_size")
Channels = _as_required(DataConfig, "channels")


class CheckpointFields(BaseModel):
    """The fields of a checkpoint that size what loading it allocates: the encoder's layers
    (model, in_channels) and each preprocessed image (image_size). A sealed file is no proof
    of origin, so these are checked, with params.yaml's bounds, before anything is built."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    image_size: ImageSize
    in_channels: Channels
    model: ModelConfig


def check_fields(state: dict, path: Path) -> CheckpointFields:
    """`state`'s size-giving fields, validated; a one-line PipelineError naming `path`, the
    field, its value and what is allowed otherwise."""
    try:
        return CheckpointFields.model_validate(state)
    except ValidationError as e:
        line = one_line(CheckpointFields, e, source=f"{path}: checkpoint field")
        raise Damaged(f"{line}; {FOREIGN}", about=ABOUT) from None


def _update(h, obj) -> None:
    """Feed `obj` (nested dicts, lists, tensors and plain values) into hash `h`, in a form that
    is the same before torch.save and after torch.load."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}:".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode() + b"=")
            _update(h, obj[key])
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)}:".encode())
        for item in obj:
            _update(h, item)
    else:
        h.update(f"V{obj!r};".encode())


def digest(state: dict) -> str:
    h = hashlib.sha256()
    _update(h, {k: v for k, v in state.items() if k != DIGEST})
    return h.hexdigest()


def seal(state: dict) -> dict:
    """`state` with the sha256 of its contents added, for `unseal` to check."""
    return {**state, DIGEST: digest(state)}


def _overdrawn(obj, key: str = "") -> str | None:
    """The key of the first tensor in `obj` that has fewer values stored than its shape holds
    (a zero-stride view: a few bytes in the file, any size once made contiguous), or None.
    torch.save stores views as they are; this pipeline only ever saves whole tensors."""
    if isinstance(obj, torch.Tensor):
        short = obj.untyped_storage().nbytes() < obj.numel() * obj.element_size()
        return key or "a tensor" if short else None
    if not isinstance(obj, dict | list | tuple):
        return None
    for k, v in obj.items() if isinstance(obj, dict) else enumerate(obj):
        found = _overdrawn(v, f"{key}.{k}" if key else str(k))
        if found:
            return found
    return None


def unseal(state, path: Path, required: frozenset[str] | set[str], what: str = "") -> dict:
    """`state` without its digest, after checking that it is a dict holding `required` and that
    its contents match the digest stored in it (states written before digests were stored have
    none and pass). Raises PipelineError naming `path` otherwise; `what` says what to do."""
    todo = f"; {what}" if what else ""
    if not isinstance(state, dict) or not set(required) <= set(state):
        raise PipelineError(f"{path}: not a simclr-pipeline checkpoint{todo}")
    body = {k: v for k, v in state.items() if k != DIGEST}
    short = _overdrawn(body)  # before the digest, which would make each tensor contiguous
    if short:
        raise PipelineError(
            f"{path}: {short} holds fewer values than its shape says (a view that would grow "
            f"when copied), which this pipeline never writes{todo}"
        )
    if DIGEST in state and digest(body) != state[DIGEST]:
        raise PipelineError(f"{path}: damaged: its contents do not match its sha256{todo}")
    return body


def save_state(state: dict, path: str | Path) -> Path:
    """`state`, sealed with its sha256, written atomically to `path`. torch.save writes through
    an open file: given a path, its own writer reports a full disk as a RuntimeError, not as
    the OSError that write_atomic turns into one line."""
    sealed = seal(state)

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            torch.save(sealed, f)

    return write_atomic(path, write)


# torch's warning before it tries a pickle protocol other than the one it writes (2); its
# weights-only unpickler then fails on the protocol's first frame.
PROTOCOL_WARNING = "Detected pickle protocol"


def _torch_load(path: Path, notes: list[str]) -> object:
    """torch.load to the CPU, weights only. torch's two-line warning about the file's pickle
    protocol is kept off the terminal and put in `notes`, for the one-line error that follows
    (if the load succeeds, the warning was needless); any other warning is shown as it was."""
    caught: list[warnings.WarningMessage] = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.filterwarnings("always", PROTOCOL_WARNING, UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    finally:
        for w in caught:
            found = re.search(rf"{PROTOCOL_WARNING} (\d+)", str(w.message))
            if found:
                notes.append(
                    f"saved with pickle protocol {found.group(1)}, which torch's "
                    "weights-only loader does not read (this pipeline writes protocol 2)"
                )
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def load_state(path: Path) -> object:
    """torch.load to the CPU with weights_only=True: tensors and plain data only, never code.
    A truncated, foreign or malicious file is a PipelineError naming `path`; an error of the
    machine (I/O, memory) is left as it is, not blamed on the file."""
    notes: list[str] = []
    try:
        return _torch_load(path, notes)
    except MemoryError:
        raise
    except OSError as e:
        if e.errno in MACHINE_ERRNOS:
            raise
        raise PipelineError(f"{path}: not a readable checkpoint (truncated or damaged)") from None
    except Exception as e:  # torch raises several types for a truncated or foreign file
        text = str(e).strip()
        code = re.search(r"GLOBAL (\S+)", text)
        if code:  # never echo torch's hint to retry with weights_only=False
            raise PipelineError(
                f"{path}: refused: it holds a pickled object ({code.group(1)}) that could run "
                "code when loaded, and checkpoints are loaded as weights only; do not use this "
                "file"
            ) from None
        if path.is_file() and path.stat().st_size == 0:
            reason = "the file is empty"
        elif notes:
            reason = notes[0]
        elif text.startswith("Weights only load failed") or not text:
            reason = "truncated or damaged"
        else:
            reason = "truncated or damaged: " + " ".join(text.splitlines()[0].split())[:120]
        raise PipelineError(f"{path}: not a readable checkpoint ({reason})") from None


def save_checkpoint(
    path: str | Path,
    encoder: Encoder,
    head,
    model: Mapping[str, object],
    image_size: int,
    extra: dict,
) -> Path:
    """The weights, with `model` (build_model's keyword arguments, every one written out) and
    the input they take; `extra` is the caller's."""
    state = {
        "encoder": encoder.state_dict(),
        "head": head.state_dict(),
        "model": to_dict(ModelConfig.model_validate(dict(model))),
        "in_channels": encoder.in_channels,
        "image_size": image_size,  # picks the stem when model.stem is auto
        **extra,
    }
    return save_state(state, path)


def _misfit(expected: dict[str, torch.Tensor], weights) -> str | None:
    """Why `weights` cannot be loaded into a model whose state (on the meta device: shapes
    only) is `expected`, or None. As unseal has checked that every tensor stores all its values,
    a config that fits the weights asks for no more memory than the file holds."""
    if not isinstance(weights, dict):
        return "the encoder's weights are not a mapping of names to tensors"
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    if missing or unexpected:
        what = "Missing" if missing else "Unexpected"
        return f"{what} key(s) {', '.join(map(repr, (missing or unexpected)[:3]))}"
    for key, want in expected.items():
        got = weights[key]
        if not isinstance(got, torch.Tensor) or got.shape != want.shape:
            return f"size mismatch for {key}"
    return None


def _encoder(state: dict, fields: CheckpointFields, path: Path) -> Encoder:
    """The encoder of the checkpoint, built only after its config is seen to fit the weights
    the file holds (so the memory it takes is bounded by the file's size)."""
    try:
        kwargs = {key: getattr(fields.model, key) for key in ENCODER_KEYS}
        with torch.device("meta"):  # shapes only: nothing is allocated
            shapes = Encoder(fields.in_channels, fields.image_size, **kwargs)
        reason = _misfit(shapes.state_dict(), state["encoder"])
        if reason is None:
            encoder = Encoder(fields.in_channels, fields.image_size, **kwargs)
            encoder.load_state_dict(state["encoder"])
            return encoder
    except (RuntimeError, KeyError, TypeError, ValueError) as e:
        text = " ".join(str(e).split())
        first = re.search(r"size mismatch for [^:]+|(?:Missing|Unexpected) key\(s\)[^:]*", text)
        reason = first.group(0) if first else text[:120]
    raise Damaged(f"{path}: its weights do not fit its model config ({reason})", about=ABOUT)


def load_encoder(path: str | Path, device: torch.device) -> tuple[Encoder, dict]:
    """The encoder f of a checkpoint, on `device`, in eval mode; and the checkpoint's metadata.

    Its sha256 shows the file is whole (no damage since it was written), not who wrote it:
    anyone can recompute it. What keeps a foreign file harmless is the rest: weights_only
    loading (no code runs), its fields checked with params.yaml's bounds and its config
    checked against the weights it holds before the encoder is built (memory stays bounded)."""
    path = Path(path)
    if path.is_dir():
        raise PipelineError(f"{path}: a folder, not a checkpoint file; name the .pt file")
    if not path.is_file():
        raise NotFound(f"{path}: checkpoint not found", about=ABOUT)
    try:
        state = unseal(load_state(path), path, REQUIRED)
    except PipelineError as e:  # not a checkpoint, damaged, foreign
        raise Damaged(str(e), about=ABOUT) from None
    encoder = _encoder(state, check_fields(state, path), path)
    meta = {k: v for k, v in state.items() if k not in ("encoder", "head")}
    return encoder.to(device).eval(), meta

"""The pretrained checkpoint: encoder and head weights, their model config and what else the
caller adds (the pretrain stage: its params and the computed per-epoch metrics).

Every checkpoint carries a sha256 of its contents (`seal`), checked when it is loaded
(`unseal`): a file damaged after it was written (a flipped bit, a foreign write) is refused
instead of giving silently different weights. Loading uses torch's weights_only unpickler, so a
file carrying a pickled object that would run code is refused too."""

from __future__ import annotations

import errno
import hashlib
import re
from pathlib import Path

import torch

from simclr.config import ModelConfig, from_dict, to_dict
from simclr.errors import PipelineError
from simclr.io import write_atomic
from simclr.models import Encoder, build_model

DIGEST = "sha256"
# Reading errors that are the machine's, not the file's (torch reports a truncated file as
# EINVAL or as one of several other exception types)
MACHINE_ERRNOS = {errno.EIO, errno.ENOMEM, errno.EACCES, errno.EPERM, errno.ESTALE, errno.EINTR}
REQUIRED = frozenset({"model", "in_channels", "image_size", "encoder"})


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


def unseal(state, path: Path, required: frozenset[str] | set[str], what: str = "") -> dict:
    """`state` without its digest, after checking that it is a dict holding `required` and that
    its contents match the digest stored in it (states written before digests were stored have
    none and pass). Raises PipelineError naming `path` otherwise; `what` says what to do."""
    todo = f"; {what}" if what else ""
    if not isinstance(state, dict) or not set(required) <= set(state):
        raise PipelineError(f"{path}: not a simclr-pipeline checkpoint{todo}")
    body = {k: v for k, v in state.items() if k != DIGEST}
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


def load_state(path: Path) -> object:
    """torch.load to the CPU with weights_only=True: tensors and plain data only, never code.
    A truncated, foreign or malicious file is a PipelineError naming `path`; an error of the
    machine (I/O, memory) is left as it is, not blamed on the file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
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
        elif text.startswith("Weights only load failed") or not text:
            reason = "truncated or damaged"
        else:
            reason = "truncated or damaged: " + " ".join(text.splitlines()[0].split())[:120]
        raise PipelineError(f"{path}: not a readable checkpoint ({reason})") from None


def save_checkpoint(
    path: str | Path, encoder: Encoder, head, model_cfg: ModelConfig, image_size: int, extra: dict
) -> Path:
    state = {
        "encoder": encoder.state_dict(),
        "head": head.state_dict(),
        "model": to_dict(model_cfg),
        "in_channels": encoder.in_channels,
        "image_size": image_size,  # picks the stem when model.stem is auto
        **extra,
    }
    return save_state(state, path)


def load_encoder(path: str | Path, device: torch.device) -> tuple[Encoder, dict]:
    """The encoder f of a checkpoint, on `device`, in eval mode; and the checkpoint's metadata."""
    path = Path(path)
    todo = "re-run the pretrain stage (dvc repro -f -s pretrain) or restore it (dvc checkout)"
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found; run the pretrain stage first")
    try:
        state = unseal(load_state(path), path, REQUIRED, todo)
    except PipelineError as e:
        message = str(e)
        raise PipelineError(message if todo in message else f"{message}; {todo}") from None
    try:
        cfg = from_dict(ModelConfig, state["model"], "checkpoint.model")
        encoder, _ = build_model(cfg, state["in_channels"], state["image_size"])
        encoder.load_state_dict(state["encoder"])
    except (PipelineError, RuntimeError, KeyError, TypeError, ValueError) as e:
        text = " ".join(str(e).split())
        first = re.search(r"size mismatch for [^:]+|(?:Missing|Unexpected) key\(s\)[^:]*", text)
        reason = first.group(0) if first else text[:120]
        raise PipelineError(
            f"{path}: its weights do not fit its model config ({reason}); {todo}"
        ) from None
    meta = {k: v for k, v in state.items() if k not in ("encoder", "head")}
    return encoder.to(device).eval(), meta

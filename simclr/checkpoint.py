"""The pretrained checkpoint: encoder and head weights, config, provenance."""

from __future__ import annotations

from pathlib import Path

import torch

from simclr.config import ModelConfig, from_dict, to_dict
from simclr.errors import PipelineError
from simclr.io import write_atomic
from simclr.models import Encoder, build_model


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
    return write_atomic(path, lambda p: torch.save(state, p))


def load_encoder(path: str | Path, device: torch.device) -> tuple[Encoder, dict]:
    """The encoder f of a checkpoint, on `device`, in eval mode; and the checkpoint's metadata."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: checkpoint not found; run the pretrain stage first")
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # torch raises several types for a truncated or foreign file
        raise PipelineError(f"{path}: not a readable checkpoint ({e}); re-run pretrain") from None
    if not isinstance(state, dict) or not {"model", "in_channels", "image_size", "encoder"} <= set(
        state
    ):
        raise PipelineError(f"{path}: not a simclr-pipeline checkpoint; re-run pretrain")
    cfg = from_dict(ModelConfig, state["model"], "checkpoint.model")
    encoder, _ = build_model(cfg, state["in_channels"], state["image_size"])
    encoder.load_state_dict(state["encoder"])
    meta = {k: v for k, v in state.items() if k not in ("encoder", "head")}
    return encoder.to(device).eval(), meta

"""Device choice and reproducibility switches."""

from __future__ import annotations

import random

import numpy as np
import torch

from simclr.errors import PipelineError


def select_device(name: str = "auto") -> torch.device:
    """'auto' picks cuda, then mps, then cpu."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    available = {
        "cpu": True,
        "cuda": torch.cuda.is_available(),
        "mps": bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()),
    }
    if not available.get(name, False):
        raise PipelineError(
            f"params.yaml: pretrain.device = {name!r} is not available on this machine; "
            "use auto or cpu"
        )
    return torch.device(name)


def seed_everything(seed: int, device: torch.device, threads: int | None = None) -> None:
    """Seed Python, NumPy and torch; deterministic algorithms on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)


def to_images(x: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 NHWC array to float NCHW tensor in [0, 1] on `device`."""
    t = torch.from_numpy(np.ascontiguousarray(x)).to(device)
    return t.permute(0, 3, 1, 2).float().div_(255)

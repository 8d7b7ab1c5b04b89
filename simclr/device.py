"""Device choice and reproducibility switches."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import random
from collections.abc import Iterator
from contextlib import contextmanager

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
            f"device = {name!r} is not available on this machine; use auto or cpu", about="device"
        )
    return torch.device(name)


@contextmanager
def explain_oom(what: str, batch_size: int) -> Iterator[None]:
    """Turn an out-of-memory error on an accelerator into one line saying so, about
    "<what> memory" (torch's own message is a page about the allocator)."""
    try:
        yield
    except torch.OutOfMemoryError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "out of memory"
        raise PipelineError(
            f"{what} ran out of accelerator memory ({first[:200]}) at batch size {batch_size}",
            about=f"{what} memory",
        ) from None


def seed_everything(seed: int, device: torch.device, threads: int | None = None) -> None:
    """Seed Python, NumPy and torch; deterministic algorithms on CPU."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    if device.type == "cpu":
        torch.use_deterministic_algorithms(True)
        # Filling every new tensor with NaN costs ~6% of a CPU step; results stay bitwise
        # reproducible without it because our code never reads memory it has not written.
        torch.utils.deterministic.fill_uninitialized_memory = False


def to_images(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 NHWC array or tensor to float NCHW tensor in [0, 1] on `device`. The copy is
    asynchronous from pinned memory; the copy happens before the conversion, at 1 byte a pixel."""
    t = x if isinstance(x, torch.Tensor) else torch.from_numpy(np.require(x, requirements="CW"))
    t = t.to(device, non_blocking=t.is_pinned())
    return t.permute(0, 3, 1, 2).float().div_(255)


def bf16_supported(device: torch.device) -> bool:
    """Whether `device` computes in bf16 natively: CPUs with oneDNN's bf16 support (AVX512-BF16,
    AMX), CUDA GPUs of Ampere and later, and Apple GPUs (MPS)."""
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    if device.type == "cuda":
        # torch's default also says yes where bf16 is only emulated (before Ampere): slow.
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type == "mps"


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device`, None for fp32; a clear error where the
    hardware cannot do it, rather than a silent slow emulation. auto: bf16 where the hardware
    has it (CPUs with AVX512-BF16/AMX, Ampere and later GPUs), else fp32."""
    if precision == "auto":
        precision = "bf16" if bf16_supported(device) else "fp32"
    if precision == "fp32":
        return None
    if precision == "fp16":
        if device.type not in ("cuda", "mps"):
            raise PipelineError(
                "precision = 'fp16' needs a GPU; use bf16 or fp32 on CPU", about="precision"
            )
        return torch.float16
    if not bf16_supported(device):
        raise PipelineError(
            f"precision = 'bf16' is not supported by this {device.type}; use fp32"
            + (" or fp16" if device.type == "cuda" else ""),
            about="precision",
        )
    return torch.bfloat16


@functools.cache
def _libc_function(name: str):
    """glibc's function `name` (malloc_trim, mallopt), or None where the C library has none
    (macOS, musl)."""
    try:
        return getattr(ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6"), name)
    except (OSError, AttributeError):
        return None


def _malloc_trim():
    return _libc_function("malloc_trim")


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4  # glibc's mallopt parameter numbers (malloc.h)
KEEP_FREED = 1 << 30  # bytes free at the heap's top that glibc keeps instead of returning


def reuse_freed_memory() -> bool:
    """Serve large tensors from the C heap, reusing freed blocks, instead of fresh pages.

    glibc maps every allocation above 32 MiB anew and returns it on free, and the kernel
    zero-fills each new page on first touch; a CPU pretraining step allocates dozens of such
    activations (256 views x 64 channels x 32 x 32 fp32 is 64 MiB) every step. Served from
    the heap and kept there, they are reused: measured on a 2-core Xeon, the fp32 step of a
    ResNet-18 at batch 128 ran ~25 % faster. `release_free_heap` still returns free memory
    every few steps, so the process does not grow. Returns whether glibc took the settings."""
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, KEEP_FREED))


def release_free_heap() -> None:
    """Hand memory that is free in the C heap back to the OS.

    On CPU, activations of every step are malloc'ed and freed; glibc keeps the freed pages in
    fragmented arenas, and over a long epoch the process grew by ~0.5 GB more on 100k images
    than on 10k for the same number of steps. Trimming every few steps keeps it flat.
    """
    trim = _malloc_trim()
    if trim is not None:
        trim(0)

"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from simclr import defaults as D
from simclr.distributed import gather_with_grad, world


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float = D.TEMPERATURE) -> torch.Tensor:
    """Mean NT-Xent over the 2N views: view i of one image is the positive of view i of the other;
    the other 2N-2 views are negatives; self-similarity is masked out.

    Under torch.distributed each process passes its own n images' views; the keys are every
    process's views, gathered with gradients, so N is the global batch and each anchor has
    2N-2 negatives. The result is this process's mean; averaged over processes (as DDP averages
    gradients) it is the single-process loss of the global batch.

    Computed in float32 at least, so it is safe under autocast.
    """
    n = z1.shape[0]
    rank, size = world()
    dtype = torch.promote_types(z1.dtype, torch.float32)
    with torch.autocast(z1.device.type, enabled=False):  # keep the similarities in float32
        a1 = F.normalize(z1.to(dtype), dim=1)
        a2 = F.normalize(z2.to(dtype), dim=1)
        keys = torch.cat([gather_with_grad(a1), gather_with_grad(a2)])  # 2N, first views first
        logits = torch.cat([a1, a2]) @ keys.T / temperature
    global_n = n * size
    own = torch.arange(n, device=z1.device) + rank * n  # this process's images, globally
    self_idx = torch.cat([own, own + global_n])
    logits[torch.arange(2 * n, device=z1.device), self_idx] = float("-inf")
    targets = torch.cat([own + global_n, own])
    return F.cross_entropy(logits, targets)

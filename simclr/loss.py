"""NT-Xent, the normalized temperature-scaled cross-entropy of SimCLR."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """Mean NT-Xent over the 2N views: view i of one image is the positive of view i of the other;
    the other 2N-2 views are negatives; self-similarity is masked out.

    Computed in float32 at least, so it is safe under autocast.
    """
    n = z1.shape[0]
    dtype = torch.promote_types(z1.dtype, torch.float32)
    with torch.autocast(z1.device.type, enabled=False):  # keep the similarities in float32
        z = F.normalize(torch.cat([z1, z2]).to(dtype), dim=1)
        logits = z @ z.T / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    idx = torch.arange(n, device=z.device)
    targets = torch.cat([idx + n, idx])
    return F.cross_entropy(logits, targets)

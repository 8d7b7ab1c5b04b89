import math

import torch

from simclr.loss import nt_xent


def reference_nt_xent(z1, z2, t):
    """The paper's definition, one anchor at a time, in float64."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    n = n2 // 2
    total = 0.0
    for i in range(n2):
        j = (i + n) % n2
        sims = [math.exp(float(z[i] @ z[k]) / t) for k in range(n2) if k != i]
        total += -math.log(math.exp(float(z[i] @ z[j]) / t) / sum(sims))
    return total / n2


def test_matches_float64_reference():
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(6, 5, generator=g), torch.randn(6, 5, generator=g)
    for t in (0.1, 0.5, 1.0):
        assert abs(nt_xent(z1, z2, t).item() - reference_nt_xent(z1, z2, t)) < 1e-5


def test_identical_views_far_apart_give_low_loss():
    z = torch.eye(4) * 10
    assert nt_xent(z, z, 0.1).item() < 1e-3
    # Self-similarity is masked: without the mask each anchor would see itself as a negative
    # as similar as the positive, and the loss would be at least log 2.
    assert nt_xent(z, z, 0.1).item() < math.log(2)


def test_gradient_flows_and_is_finite_in_half_precision():
    z1 = torch.randn(8, 4, dtype=torch.bfloat16, requires_grad=True)
    z2 = torch.randn(8, 4, dtype=torch.bfloat16, requires_grad=True)
    loss = nt_xent(z1, z2, 0.5)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(z1.grad.float()).all()

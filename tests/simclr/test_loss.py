import math

import pytest
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


# --- Agreement with lightly and with a differentiable float64 reference --------------------


def reference_nt_xent_autograd(z1, z2, t):
    """The same per-anchor definition as `reference_nt_xent`, in float64 torch ops so that it
    has gradients: -log(exp(s_ij / t) / sum_{k != i} exp(s_ik / t)), averaged over 2N anchors."""
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    n2 = len(z)
    n = n2 // 2
    terms = []
    for i in range(n2):
        j = (i + n) % n2
        others = torch.stack([z[i] @ z[k] for k in range(n2) if k != i]) / t
        terms.append(torch.logsumexp(others, 0) - z[i] @ z[j] / t)
    return torch.stack(terms).mean()


def _random_pair(n, d, seed, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g, dtype=dtype), torch.randn(n, d, generator=g, dtype=dtype)


def _loss_and_grads(fn, z1, z2):
    a, b = z1.clone().requires_grad_(), z2.clone().requires_grad_()
    loss = fn(a, b)
    loss.backward()
    return loss.detach(), a.grad, b.grad


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize(("n", "d", "seed"), [(2, 3, 1), (16, 8, 2), (64, 32, 3)])
def test_matches_lightly_with_gradients(temperature, n, d, seed):
    lightly_loss = pytest.importorskip("lightly.loss")
    z1, z2 = _random_pair(n, d, seed)  # float32, as under training
    ours, g1, g2 = _loss_and_grads(lambda a, b: nt_xent(a, b, temperature), z1, z2)
    # lightly normalizes each input itself, orders the 2N rows as [z1; z2] with positive i <-> i
    # (logits [z1.z2 | z1.z1 without i] and [z2.z1 | z2.z2 without i]) and averages the
    # cross-entropy over all 2N anchors, as ours does: the same number, not a rescaled one.
    theirs, h1, h2 = _loss_and_grads(lightly_loss.NTXentLoss(temperature=temperature), z1, z2)
    assert ours.dtype == theirs.dtype == torch.float32
    assert abs(ours.item() - theirs.item()) < 1e-6
    assert abs(ours.item() - reference_nt_xent(z1, z2, temperature)) < 1e-6
    torch.testing.assert_close(g1, h1, rtol=0, atol=1e-6)
    torch.testing.assert_close(g2, h2, rtol=0, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.1, 0.5])
@pytest.mark.parametrize(("n", "d", "seed"), [(2, 3, 1), (16, 8, 2)])
def test_gradients_match_float64_reference(temperature, n, d, seed):
    # In float64 (ours computes in the inputs' precision when it is above float32), so the
    # comparison measures the formula, not float32 rounding of gradients of size ~10.
    z1, z2 = _random_pair(n, d, seed, dtype=torch.float64)
    ours, g1, g2 = _loss_and_grads(lambda a, b: nt_xent(a, b, temperature), z1, z2)
    ref, r1, r2 = _loss_and_grads(
        lambda a, b: reference_nt_xent_autograd(a, b, temperature), z1, z2
    )
    assert ours.dtype == torch.float64
    assert abs(ours.item() - ref.item()) < 1e-9
    assert abs(ours.item() - reference_nt_xent(z1, z2, temperature)) < 1e-9
    torch.testing.assert_close(g1, r1, rtol=0, atol=1e-9)
    torch.testing.assert_close(g2, r2, rtol=0, atol=1e-9)


# --- Broken variants: the tests above must be able to tell them apart ----------------------


def nt_xent_without_self_mask(z1, z2, t):
    """Bug 1: each anchor's own similarity (1/t, the largest logit) stays in the denominator."""
    n = len(z1)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    idx = torch.arange(n)
    return torch.nn.functional.cross_entropy(z @ z.T / t, torch.cat([idx + n, idx]))


def nt_xent_shifted_positive(z1, z2, t):
    """Bug 2: the positive of anchor i is taken one row too far, (i + n + 1) mod 2n."""
    n = len(z1)
    z = torch.nn.functional.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T / t).masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    return torch.nn.functional.cross_entropy(logits, (torch.arange(2 * n) + n + 1) % (2 * n))


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_hand_built_orthogonal_case(temperature):
    """Two images, views equal to one-hot vectors: rows a0 = b0 = e1, a1 = b1 = e2. Every anchor
    has its positive at cosine 1 and two negatives at cosine 0, so by hand, with u = 1/t:
      correct:          log(1 + 2 e^-u)
      no self-mask:     log(2 + 2 e^-u)  (the anchor itself joins the positive in the sum)
      shifted positive: log(e^u + 2)     (the 'positive' picked is a cosine-0 row)."""
    u = 1 / temperature
    z = torch.eye(2)
    correct = math.log(1 + 2 * math.exp(-u))
    no_mask = math.log(2 + 2 * math.exp(-u))
    shifted = math.log(math.exp(u) + 2)
    assert abs(nt_xent(z, z, temperature).item() - correct) < 1e-6
    assert abs(reference_nt_xent(z, z, temperature) - correct) < 1e-12
    assert abs(nt_xent_without_self_mask(z, z, temperature).item() - no_mask) < 1e-6
    assert abs(nt_xent_shifted_positive(z, z, temperature).item() - shifted) < 1e-6
    assert no_mask - correct > 0.5 and shifted - correct > 1.5  # log 2 and u - log 3 apart


@pytest.mark.parametrize("temperature", [0.1, 0.5])
def test_broken_variants_differ_from_reference_by_a_margin(temperature):
    # Views of one image close together, as after training: the positive dominates, so both
    # bugs change the loss a lot, while ours equals the reference.
    z1, noise = _random_pair(8, 16, seed=4)
    z2 = z1 + 0.1 * noise
    ref = reference_nt_xent(z1, z2, temperature)
    assert abs(nt_xent(z1, z2, temperature).item() - ref) < 1e-6
    assert abs(nt_xent_without_self_mask(z1, z2, temperature).item() - ref) > 0.2
    assert abs(nt_xent_shifted_positive(z1, z2, temperature).item() - ref) > 1.0
    # And on plain random inputs too (positives no closer than negatives).
    z1, z2 = _random_pair(8, 16, seed=5)
    ref = reference_nt_xent(z1, z2, temperature)
    assert abs(nt_xent_without_self_mask(z1, z2, temperature).item() - ref) > 0.05
    assert abs(nt_xent_shifted_positive(z1, z2, temperature).item() - ref) > 0.05

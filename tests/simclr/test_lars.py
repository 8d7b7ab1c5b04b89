"""LARS against a float64 transcription of the official SimCLR update rule; the parameter
groups and the warmup-cosine schedule that pretraining and fine-tuning share."""

from __future__ import annotations

import copy
import io

import numpy as np
import pytest
import torch
from torch import nn

from simclr.lars import EETA_DEFAULT, LARS, lars_param_groups
from simclr.models import build_model
from simclr.optim import warmup_cosine


def _model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 3))


def _backward(model: nn.Module, step: int) -> None:
    """A deterministic, non-symmetric loss so every parameter gets a distinct gradient."""
    g = torch.Generator().manual_seed(100 + step)
    x = torch.randn(8, 5, generator=g)
    target = torch.randn(8, 3, generator=g)
    model.zero_grad(set_to_none=True)
    (model(x) * target).sum().backward()


def _reference_step(p, g, v, *, lr, momentum, weight_decay, eeta, nesterov, exclude):
    """One parameter, float64, written line by line from tf2/lars_optimizer.py."""
    if not exclude and weight_decay:
        g = g + weight_decay * p
    trust = 1.0
    if not exclude:
        w_norm, g_norm = torch.linalg.vector_norm(p), torch.linalg.vector_norm(g)
        if w_norm > 0 and g_norm > 0:
            trust = eeta * w_norm / g_norm
    scaled_lr = lr * trust
    v = momentum * v + scaled_lr * g
    update = momentum * v + scaled_lr * g if nesterov else v
    return p - update, v


def _assert_rel(actual: torch.Tensor, expected: torch.Tensor, rel: float = 1e-6) -> None:
    err = torch.linalg.vector_norm(actual.double() - expected)
    scale = torch.linalg.vector_norm(expected)
    assert err <= rel * scale, f"relative error {float(err / scale):.3g} > {rel}"


@pytest.mark.parametrize("zero_weight", [False, True])
@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
def test_two_steps_match_float64_reference(weight_decay, nesterov, zero_weight):
    model = _model()
    if zero_weight:
        with torch.no_grad():
            model[0].weight.zero_()  # ||p|| = 0 on the first step -> trust must be 1
    # A large eeta makes the trust-scaled step comparable to the weights, so a wrong ratio
    # shows far above float32 rounding.
    lr, momentum, eeta = 0.7, 0.9, 0.3
    groups = lars_param_groups([model], weight_decay)
    opt = LARS(groups, lr=lr, momentum=momentum, trust_coefficient=eeta, nesterov=nesterov)
    # The rate changes between the steps, as under warmup/cosine: the official rule keeps
    # the old rate inside v, unlike torch's SGD, which multiplies all of v by the new one.
    lr_at = [lr, 0.4 * lr]
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_at[s] / lr if s < 2 else 0.0)

    exclude = {id(p): g["lars_exclude"] for g in groups for p in g["params"]}
    ref = {
        id(p): (p.detach().double().clone(), torch.zeros_like(p, dtype=torch.float64))
        for p in model.parameters()
    }
    for step in range(2):
        _backward(model, step)
        for p in model.parameters():
            p64, v64 = ref[id(p)]
            ref[id(p)] = _reference_step(
                p64,
                p.grad.double(),
                v64,
                lr=lr_at[step],
                momentum=momentum,
                weight_decay=weight_decay,
                eeta=eeta,
                nesterov=nesterov,
                exclude=exclude[id(p)],
            )
        g0 = model[0].weight.grad.clone()
        assert opt.param_groups[0]["lr"] == pytest.approx(lr_at[step])
        opt.step()
        sched.step()
        if zero_weight and step == 0:
            # ||p|| = 0, so trust = 1 and the step is plain momentum SGD: v = lr * g.
            torch.testing.assert_close(
                opt.state[model[0].weight]["momentum_buffer"], lr * g0, rtol=1e-6, atol=0
            )
        for p in model.parameters():
            p64, v64 = ref[id(p)]
            _assert_rel(p.detach(), p64)
            _assert_rel(opt.state[p]["momentum_buffer"], v64)


def test_trust_is_one_for_zero_gradient_and_none_grads_are_skipped():
    w = nn.Parameter(torch.tensor([[3.0, 4.0]]))
    frozen = nn.Parameter(torch.tensor([[1.0, 2.0]]))
    opt = LARS([w, frozen], lr=0.5, momentum=0.9, weight_decay=0.0)
    w.grad = torch.zeros_like(w)  # ||g|| = 0: the ratio falls back to 1, no nan
    opt.step()
    assert torch.equal(w.detach(), torch.tensor([[3.0, 4.0]]))
    assert torch.equal(opt.state[w]["momentum_buffer"], torch.zeros_like(w))
    assert frozen not in opt.state
    assert torch.equal(frozen.detach(), torch.tensor([[1.0, 2.0]]))


@pytest.mark.parametrize("nesterov", [False, True])
def test_bn_and_bias_get_plain_momentum_sgd_and_weights_get_the_trust_ratio(nesterov):
    lr, momentum, wd = 0.2, 0.9, 0.1
    model = _model()
    twin = copy.deepcopy(model)
    opt = LARS(lars_param_groups([model], wd), lr=lr, momentum=momentum, nesterov=nesterov)
    # Torch SGD on a twin with the same groups: weight decay on weights, none on BN/bias.
    sgd = torch.optim.SGD(
        lars_param_groups([twin], wd), lr=lr, momentum=momentum, nesterov=nesterov
    )
    excluded = {"0.bias", "1.weight", "1.bias", "3.bias"}
    assert {n for n, p in model.named_parameters() if p.ndim <= 1} == excluded

    for step in range(2):
        before = [p.detach().clone() for p in model.parameters()]
        _backward(model, step)
        for p, q in zip(model.parameters(), twin.parameters(), strict=True):
            q.grad = p.grad.clone()
        opt.step()
        sgd.step()
        if step > 0:
            continue
        # After one step LARS's v is lr * trust * (g + wd p), torch's buffer is g + wd p.
        named = zip(model.named_parameters(), twin.parameters(), before, strict=True)
        for (n, p), q, p0 in named:
            v, buf = opt.state[p]["momentum_buffer"], sgd.state[q]["momentum_buffer"]
            if n in excluded:
                torch.testing.assert_close(v, lr * buf, rtol=1e-6, atol=0)
            else:
                trust = EETA_DEFAULT * p0.norm() / buf.norm()
                assert trust < 0.1  # far from 1, so the comparison is not vacuous
                torch.testing.assert_close(v, lr * trust * buf, rtol=1e-6, atol=0)

    for (n, p), q in zip(model.named_parameters(), twin.parameters(), strict=True):
        if n in excluded:
            # Constant lr: lr inside v (official) and lr outside v (torch) coincide.
            _assert_rel(p.detach(), q.detach().double())
        else:
            assert not torch.allclose(p, q, rtol=1e-4, atol=0)


def test_first_momentum_buffer_is_trust_scaled_decayed_gradient():
    lr, wd = 0.3, 0.01
    model = _model()
    opt = LARS(lars_param_groups([model], wd), lr=lr)
    before = [p.detach().clone() for p in model.parameters()]
    _backward(model, 0)
    grads = [p.grad.clone() for p in model.parameters()]
    opt.step()
    for p, p0, g in zip(model.parameters(), before, grads, strict=True):
        v = opt.state[p]["momentum_buffer"]
        if p.ndim <= 1:
            torch.testing.assert_close(v, lr * g, rtol=1e-6, atol=0)
        else:
            gd = g + wd * p0
            trust = EETA_DEFAULT * p0.norm() / gd.norm()
            torch.testing.assert_close(v, lr * trust * gd, rtol=1e-6, atol=1e-12)


def test_trust_ratio_uses_the_decayed_gradient_norm():
    # p = (3, 4), wd * p = (1.5, 2), g = (-1.5, -1): g + wd p = (0, 1), so the official
    # ratio is eeta * 5 / 1. ||g|| (1.80) or ||g|| + wd ||p|| (4.30, as in Lightning Bolts,
    # lightly and solo-learn) would give a different step. Every number is exact in float32.
    p = nn.Parameter(torch.tensor([3.0, 4.0]))
    opt = LARS([p], lr=1.0, momentum=0.5, weight_decay=0.5, trust_coefficient=0.125)
    p.grad = torch.tensor([-1.5, -1.0])
    opt.step()
    assert torch.equal(opt.state[p]["momentum_buffer"], torch.tensor([0.0, 0.625]))
    assert torch.equal(p.detach(), torch.tensor([3.0, 3.375]))


def test_trust_ratio_uses_the_gradient_not_the_update_norm():
    # Two steps so the update (momentum * v + lr * g) differs from the gradient; every
    # number is exact in float32.
    p = nn.Parameter(torch.tensor([0.0, 5.0]))
    opt = LARS([p], lr=1.0, momentum=0.5, trust_coefficient=0.125)
    p.grad = torch.tensor([0.0, 1.0])
    opt.step()  # trust = 0.125 * 5 / 1 = 0.625
    assert torch.equal(p.detach(), torch.tensor([0.0, 4.375]))
    p.grad = torch.tensor([3.0, 4.0])
    opt.step()  # trust = 0.125 * 4.375 / ||(3, 4)|| = 0.109375, not / ||(3, 4.3125)||
    v = torch.tensor([0.5 * 0.0 + 0.109375 * 3, 0.5 * 0.625 + 0.109375 * 4])
    assert torch.equal(v, torch.tensor([0.328125, 0.75]))
    assert torch.equal(opt.state[p]["momentum_buffer"], v)
    assert torch.equal(p.detach(), torch.tensor([-0.328125, 3.625]))


def test_nesterov_update_exact():
    p = nn.Parameter(torch.tensor([0.0, 5.0]))
    opt = LARS([p], lr=1.0, momentum=0.5, trust_coefficient=0.125, nesterov=True)
    p.grad = torch.tensor([0.0, 1.0])
    opt.step()  # v = 0.625 g; update = 0.5 v + 0.625 g = (0, 0.9375)
    assert torch.equal(opt.state[p]["momentum_buffer"], torch.tensor([0.0, 0.625]))
    assert torch.equal(p.detach(), torch.tensor([0.0, 4.0625]))


def _build(model: nn.Module):
    opt = LARS(lars_param_groups([model], 1e-4), lr=0.6, momentum=0.9, nesterov=True)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / 4 if s < 4 else 0.5)
    return opt, sched


def test_state_dict_round_trip_resumes_bitwise():
    model_a = _model()
    opt_a, sched_a = _build(model_a)
    for step in range(3):
        _backward(model_a, step)
        opt_a.step()
        sched_a.step()

    buf = io.BytesIO()
    torch.save({"opt": opt_a.state_dict(), "sched": sched_a.state_dict()}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=True)
    model_b = copy.deepcopy(model_a)
    opt_b, sched_b = _build(model_b)
    opt_b.load_state_dict(saved["opt"])
    sched_b.load_state_dict(saved["sched"])
    assert [g["lars_exclude"] for g in opt_b.param_groups] == [False, True]

    for step in range(3, 6):
        for model, opt, sched in ((model_a, opt_a, sched_a), (model_b, opt_b, sched_b)):
            _backward(model, step)
            opt.step()
            sched.step()
    assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"] == 0.3
    for p, q in zip(model_a.parameters(), model_b.parameters(), strict=True):
        assert torch.equal(p, q)
        assert torch.equal(opt_a.state[p]["momentum_buffer"], opt_b.state[q]["momentum_buffer"])


def test_lars_param_groups_split_and_work_for_sgd_and_adamw():
    conv = nn.Conv2d(3, 4, 3, bias=False)
    head = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.Linear(4, 2, bias=False))
    shared = nn.Sequential(head[0])  # the same Linear reached twice must appear once
    groups = lars_param_groups([conv, head, shared], 1e-6)
    adapted, excluded = groups
    assert adapted["weight_decay"] == 1e-6 and adapted["lars_exclude"] is False
    assert excluded["weight_decay"] == 0.0 and excluded["lars_exclude"] is True
    assert [id(p) for p in adapted["params"]] == [
        id(conv.weight),
        id(head[0].weight),
        id(head[2].weight),
    ]
    assert [id(p) for p in excluded["params"]] == [
        id(head[0].bias),
        id(head[1].weight),
        id(head[1].bias),
    ]

    # torch's SGD and AdamW keep unknown group keys and ignore them when stepping.
    for make in (
        lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9, nesterov=True),
        lambda g: torch.optim.AdamW(g, lr=0.1),
    ):
        opt = make(lars_param_groups([head], 0.1))
        head(torch.randn(6, 4)).sum().backward()
        opt.step()
        sd = opt.state_dict()
        assert [g["lars_exclude"] for g in sd["param_groups"]] == [False, True]
        opt.load_state_dict(sd)


@pytest.mark.parametrize("head", ["v1", "v2"])
def test_param_groups_of_the_real_model_exclude_exactly_bn_and_biases(head):
    encoder, projection = build_model(3, 16, head=head)
    model = nn.ModuleDict({"f": encoder, "g": projection})
    name = {id(p): n for n, p in model.named_parameters()}
    excluded = {
        f"{m}.{n}"
        for m, module in model.named_modules()
        for n, _ in module.named_parameters(recurse=False)
        if n == "bias" or isinstance(module, nn.modules.batchnorm._BatchNorm)
    }
    assert any(".bn" in n for n in excluded) and any(n.startswith("g.") for n in excluded)
    adapted_group, excluded_group = lars_param_groups([encoder, projection], 1e-6)
    assert {name[id(p)] for p in excluded_group["params"]} == excluded
    assert {name[id(p)] for p in adapted_group["params"]} == set(name.values()) - excluded
    assert (excluded_group["weight_decay"], excluded_group["lars_exclude"]) == (0.0, True)
    assert (adapted_group["weight_decay"], adapted_group["lars_exclude"]) == (1e-6, False)


@pytest.mark.parametrize(("warmup", "total"), [(0, 1), (0, 7), (3, 10), (10, 100)])
def test_warmup_cosine_matches_the_float64_formula(warmup, total):
    """Linear from 1/warmup to 1 over the warmup steps, then 0.5 (1 + cos(pi t)) with t going
    from 0 to 1 over the rest: 0 at `total`."""
    s = np.arange(total + 1, dtype=np.float64)
    cosine = 0.5 * (1 + np.cos(np.pi * (s - warmup) / (total - warmup)))
    expected = np.where(s < warmup, (s + 1) / max(warmup, 1), cosine)
    got = np.array([warmup_cosine(int(k), warmup, total) for k in s])
    np.testing.assert_allclose(got, expected, rtol=1e-15, atol=1e-16)
    assert got[max(warmup - 1, 0)] == 1.0 and got[-1] == pytest.approx(0.0, abs=1e-16)

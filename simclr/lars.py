"""LARS as in the official SimCLR code (google-research/simclr, tf2/lars_optimizer.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

EETA_DEFAULT = 0.001


class LARS(torch.optim.Optimizer):
    """Layer-wise Adaptive Rate Scaling, the official SimCLR "classic momentum" variant.

    Per parameter, with group options `lr`, `momentum`, `weight_decay`, `trust_coefficient`
    (eeta), `nesterov` and `lars_exclude`:

        g <- g + weight_decay * p                      (unless excluded)
        trust = eeta * ||p|| / ||g||  if both norms > 0 and not excluded, else 1
        v <- momentum * v + lr * trust * g
        p <- p - (momentum * v + lr * trust * g  if nesterov else v)

    Groups with `lars_exclude=True` (BN and biases) get plain momentum SGD, no weight decay.
    """

    def __init__(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict],
        lr: float,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        trust_coefficient: float = EETA_DEFAULT,
        nesterov: bool = False,
        lars_exclude: bool = False,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"invalid momentum: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"invalid weight_decay: {weight_decay}")
        if trust_coefficient <= 0.0:
            raise ValueError(f"invalid trust_coefficient: {trust_coefficient}")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "weight_decay": weight_decay,
            "trust_coefficient": trust_coefficient,
            "nesterov": nesterov,
            "lars_exclude": lars_exclude,
        }
        super().__init__(params, defaults)

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        # Groups pickled before an option existed still step with its default.
        for group in self.param_groups:
            group.setdefault("nesterov", False)
            group.setdefault("lars_exclude", False)
            group.setdefault("trust_coefficient", EETA_DEFAULT)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()

        for group in self.param_groups:
            lr = group["lr"]
            momentum = group["momentum"]
            weight_decay = group["weight_decay"]
            eeta = group["trust_coefficient"]
            nesterov = group["nesterov"]
            exclude = group["lars_exclude"]

            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("LARS does not support sparse gradients")
                grad = p.grad

                state = self.state[p]
                if "momentum_buffer" not in state:
                    # Zero-initialised like the official "Momentum" slot, so the first
                    # step is v = scaled_lr * g.
                    state["momentum_buffer"] = torch.zeros_like(
                        p, memory_format=torch.preserve_format
                    )
                v = state["momentum_buffer"]

                if exclude:
                    # No weight decay and trust = 1: plain momentum SGD (lr inside v).
                    scaled_grad = grad.mul(lr)
                else:
                    if weight_decay != 0:
                        # Decay enters the gradient *before* the norm, so ||g|| below is
                        # the norm of the decayed gradient, as in the official code.
                        grad = grad.add(p, alpha=weight_decay)
                    w_norm = torch.linalg.vector_norm(p)
                    g_norm = torch.linalg.vector_norm(grad)
                    # torch.where keeps the ratio on the device (no host sync per
                    # parameter); the discarded branch may be inf/nan when a norm is 0.
                    trust = torch.where(
                        (w_norm > 0) & (g_norm > 0),
                        eeta * w_norm / g_norm,
                        torch.ones_like(w_norm),
                    )
                    scaled_grad = grad.mul(trust * lr)

                # Classic momentum: the (trust-scaled) rate is folded into v, so a step
                # of the schedule only affects the newest gradient, not the history.
                v.mul_(momentum).add_(scaled_grad)
                if nesterov:
                    p.sub_(v.mul(momentum).add_(scaled_grad))
                else:
                    p.sub_(v)

        return loss


def lars_param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Two groups: weights of convolutions and linear layers (decayed, LARS-adapted) and
    every parameter with ndim <= 1, i.e. BN scales/shifts and biases (neither).

    The `lars_exclude` key is ignored by torch.optim.SGD/AdamW, so the groups serve them too.
    """
    adapted: list[nn.Parameter] = []
    excluded: list[nn.Parameter] = []
    seen: set[int] = set()
    for m in modules:
        for p in m.parameters():
            # A parameter shared by two modules may appear in only one group.
            if id(p) in seen:
                continue
            seen.add(id(p))
            (adapted if p.ndim > 1 else excluded).append(p)
    return [
        {"params": adapted, "weight_decay": weight_decay, "lars_exclude": False},
        {"params": excluded, "weight_decay": 0.0, "lars_exclude": True},
    ]

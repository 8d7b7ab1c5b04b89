"""L2-regularised multinomial logistic regression in torch, on the training device, batched over
independent problems of one size (the label subsets of one fraction).

The objective is scikit-learn's LogisticRegression's, so that C means the same thing:

    C x sum_i cross_entropy(W x_i + b, y_i) + 1/2 ||W||^2      (the intercept b unpenalised)

divided by C x n as scikit-learn divides it (the mean loss plus ||W||^2 / (2 C n)), which gives
its stopping tolerance the same meaning: L-BFGS (10 correction pairs, as scipy's) stops when
every gradient entry is below `tol`, when the objective stops decreasing, or after `max_iter`
iterations. Only the classes present in a problem's labels get a score; with exactly two, the
penalty is that of scikit-learn's binary model (one weight vector, the difference of the two
scores), which the symmetric two-column form has at twice the strength.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

HISTORY = 10  # L-BFGS correction pairs (scipy's default maxcor)
ARMIJO = 1e-4  # sufficient decrease of the backtracking line search
MAX_HALVINGS = 50  # line-search trials (scikit-learn passes maxls=50)


@dataclass(frozen=True)
class Problems:
    """B problems of n standardized samples each: x (B, n, d), y (B, n) class indices, present
    (B, K): the classes that occur in each problem's labels."""

    x: torch.Tensor
    y: torch.Tensor
    present: torch.Tensor

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, n_classes: int) -> Problems:
        present = torch.zeros(len(y), n_classes, dtype=torch.bool, device=y.device)
        present.scatter_(1, y, True)
        return cls(x, y, present)

    def penalty(self, C: torch.Tensor) -> torch.Tensor:
        """Each problem's L2 factor on the mean-loss scale: 1 / (C n), doubled for two classes."""
        binary = self.present.sum(1) == 2
        return (1 + binary.to(C.dtype)) / (C * self.x.shape[1])


def scores(w: torch.Tensor, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Class scores x W + b, (B, n, K); -inf for classes absent from a problem."""
    logits = torch.baddbmm(w[:, -1:], x, w[:, :-1])
    return logits.masked_fill(~present[:, None, :], float("-inf"))


def loss_and_gradient(
    w: torch.Tensor, p: Problems, penalty: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The objective of each problem (B,) and its gradient (B, d + 1, K), in closed form."""
    n = p.x.shape[1]
    logits = scores(w, p.x, p.present)
    lse = logits.logsumexp(-1, keepdim=True)
    picked = logits.gather(-1, p.y[..., None])
    weights = w[:, :-1]
    loss = (lse - picked).mean((1, 2)) + 0.5 * penalty * weights.square().sum((1, 2))
    residual = (logits - lse).exp_()  # softmax; 0 for absent classes
    residual.scatter_add_(-1, p.y[..., None], torch.full_like(picked, -1.0)).div_(n)
    grad_w = torch.baddbmm(weights * penalty[:, None, None], p.x.transpose(1, 2), residual)
    return loss, torch.cat([grad_w, residual.sum(1, keepdim=True)], 1)


def _direction(g: torch.Tensor, pairs: list[tuple]) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion, each problem with its own pairs (a pair with rho 0,
    skipped for lack of curvature, changes nothing)."""
    q, alphas = g.clone(), []
    for s, y, rho in reversed(pairs):
        a = rho * (s * q).sum(1)
        q -= a[:, None] * y
        alphas.append(a)
    if pairs:
        s, y, rho = pairs[-1]
        yy = (y * y).sum(1)
        q *= torch.where(rho > 0, 1 / (rho * yy).clamp_min(1e-30), 1.0)[:, None]
    for (s, y, rho), a in zip(pairs, reversed(alphas), strict=True):
        b = rho * (y * q).sum(1)
        q += (a - b)[:, None] * s
    return -q


def _line_search(w, f, g, d, objective, active):
    """Backtracking from a unit step until each active problem decreases enough; the new point,
    its objective and gradient, and which problems could not decrease: those whose step shrank
    below the floats' resolution or that used up MAX_HALVINGS (converged as far as floats go)."""
    gd = (g * d).sum(1)
    t = torch.ones_like(f)
    resolution = torch.finfo(w.dtype).eps * w.abs().amax(1).clamp_min(1.0)
    for _ in range(MAX_HALVINGS):
        w_new = w + t[:, None] * d
        f_new, g_new = objective(w_new)
        ok = (f_new <= f + ARMIJO * t * gd) | ~active
        tiny = (t[:, None] * d).abs().amax(1) <= resolution
        if bool((ok | tiny).all()):
            break
        t = torch.where(ok, t, t / 2)
    stuck = ~ok
    keep = stuck[:, None]
    w_new, g_new = torch.where(keep, w, w_new), torch.where(keep, g, g_new)
    return w_new, torch.where(stuck, f, f_new), g_new, stuck


def fit(
    p: Problems,
    C: torch.Tensor,
    init: torch.Tensor | None = None,
    max_iter: int = 1000,
    tol: float = 1e-4,
) -> torch.Tensor:
    """The weights (B, d + 1, K) minimising each problem's objective (last row: intercepts),
    by L-BFGS from `init` (zeros when None): warm-started along a regularisation path, a fit
    needs far fewer iterations."""
    b, n, d = p.x.shape
    k = p.present.shape[1]
    w = torch.zeros(b, d + 1, k, dtype=p.x.dtype, device=p.x.device) if init is None else init
    penalty = p.penalty(C.to(p.x))

    def objective(flat: torch.Tensor):
        f, g = loss_and_gradient(flat.view(b, d + 1, k), p, penalty)
        return f, g.reshape(b, -1)

    flat = w.reshape(b, -1).clone()
    f, g = objective(flat)
    ftol = 64 * torch.finfo(torch.float64).eps  # scipy's: no relative decrease left
    active = g.abs().amax(1) > tol
    pairs: list[tuple] = []
    for _ in range(max_iter):
        if not bool(active.any()):
            break
        direction = torch.where(active[:, None], _direction(g, pairs), 0.0)
        if not pairs:  # the first step: at most unit length, as torch's and scipy's L-BFGS
            direction /= direction.abs().sum(1, keepdim=True).clamp_min(1.0)
        new, f_new, g_new, stuck = _line_search(flat, f, g, direction, objective, active)
        s, y = new - flat, g_new - g
        sy = (s * y).sum(1)
        rho = torch.where((sy > 1e-10) & active, 1 / sy.clamp_min(1e-10), 0.0)
        pairs = [*pairs[-(HISTORY - 1) :], (s, y, rho)]
        decrease = (f - f_new) / torch.maximum(f.abs(), f_new.abs()).clamp_min(1.0)
        flat, f, g = new, f_new, g_new
        active &= ~(stuck | (g.abs().amax(1) <= tol) | (decrease <= ftol))
    return flat.view(b, d + 1, k)


def predict(w: torch.Tensor, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """The highest-scoring present class for each row of x (B, m, d): (B, m)."""
    return scores(w, x, present).argmax(-1)


def predict_shared(w: torch.Tensor, x: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """`predict` of every problem on the same rows x (m, d), in one matrix product: (B, m)."""
    b, d1, k = w.shape
    flat = w[:, :-1].permute(1, 0, 2).reshape(d1 - 1, b * k)
    logits = torch.addmm(w[:, -1].reshape(1, b * k), x, flat).view(len(x), b, k)
    return logits.masked_fill(~present[None], float("-inf")).argmax(-1).T


def scaling(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-problem mean and std (B, 1, d) of x (B, n, d), as scikit-learn's StandardScaler:
    the population std, and 1 for a constant feature (which is then only centred)."""
    mean = x.mean(1, keepdim=True)
    std = x.var(1, unbiased=False, keepdim=True).sqrt()
    constant = std <= 10 * torch.finfo(x.dtype).eps * mean.abs().clamp_min(1.0)
    return mean, torch.where(constant, 1.0, std)


def unscaled(w: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """Weights fitted on (x - mean) / std turned into weights on x itself (same scores)."""
    weights = w[:, :-1] / std.transpose(1, 2)
    bias = w[:, -1:] - torch.bmm(mean, weights)
    return torch.cat([weights, bias], 1)

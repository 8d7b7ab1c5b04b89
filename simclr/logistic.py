"""L2-regularised multinomial logistic regression in torch, on the training device, batched over
independent problems of one size (the label subsets of one fraction).

The objective is scikit-learn's LogisticRegression's, so that C means the same thing:

    C x sum_i cross_entropy(W x_i + b, y_i) + 1/2 ||W||^2      (the intercept b unpenalised)

divided by C x n as scikit-learn divides it (the mean loss plus ||W||^2 / (2 C n)), which gives
its stopping tolerance the same meaning: L-BFGS (10 correction pairs, as scipy's) stops when
every entry of the weights' gradient is below `tol`, when the objective stops decreasing, or
after `max_iter` iterations. Only the classes present in a problem's labels get a score; with
exactly two, the penalty is that of scikit-learn's binary model (one weight vector, the
difference of the two scores), which the symmetric two-column form has at twice the strength.

L-BFGS is preconditioned, which changes its path but not the optimum: its initial inverse
Hessian is that of the quadratic CURVATURE/2 x mean((W x)^2) + penalty/2 ||W||^2, from the top
eigenvectors of the standardized features' second moment x^T x / n (the mean of the others for
the rest of the spectrum). Raw pixels need this: neighbouring pixels are so correlated that the
top eigenvalue of their 3,072-d second moment is hundreds of times the average, and plain
L-BFGS, scipy's as much as ours, then needs thousands of iterations.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import torch

HISTORY = 10  # L-BFGS correction pairs (scipy's default maxcor)
ARMIJO = 1e-4  # sufficient decrease of the backtracking line search
MAX_HALVINGS = 50  # line-search trials (scikit-learn passes maxls=50)
CURVATURE = 0.25  # the logistic loss's largest second derivative: the preconditioner's scale
RANK = 256  # eigenvectors the preconditioner knows; all of them for features of <= RANK dims
POWER_ITERATIONS = 2  # of the randomized range finder (Halko et al. 2011)


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

    @cached_property
    def spectrum(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Top eigenvectors V (B, d, r) and eigenvalues (B, r) of x^T x / n, r = min(n, d,
        RANK), and the mean of the other nonzero ones (B,): exact when r = min(n, d), otherwise
        a randomized range finder with a fixed seed (no global random state is drawn)."""
        n, d = self.x.shape[1:]
        r = min(n, d, RANK)
        gen = torch.Generator(self.x.device).manual_seed(0)
        probe = torch.randn(len(self.x), d, r, generator=gen, device=self.x.device)
        basis = torch.linalg.qr(self.x @ probe.to(self.x.dtype)).Q
        for _ in range(POWER_ITERATIONS):
            basis = torch.linalg.qr(self.x @ (self.x.transpose(1, 2) @ basis)).Q
        _, sv, vh = torch.linalg.svd(basis.transpose(1, 2) @ self.x, full_matrices=False)
        top = sv.square() / n
        # over the row space's other min(n, d) - r dimensions (x's null space has only the penalty)
        rest = (self.x.square().sum((1, 2)) / n - top.sum(1)) / max(min(n, d) - r, 1)
        return vh.transpose(1, 2), top, rest.clamp_min(0.0)

    def preconditioner(self, penalty: torch.Tensor):
        """q (B, (d + 1) K) -> the quadratic model's inverse Hessian times q, per problem: in
        the eigenbasis 1 / (CURVATURE x eigenvalue + penalty); the intercepts 1 / CURVATURE."""
        v, top, rest = self.spectrum
        b, d, k = len(self.x), self.x.shape[2], self.present.shape[1]
        base = 1 / (CURVATURE * rest + penalty)  # (B,)
        extra = 1 / (CURVATURE * top + penalty[:, None]) - base[:, None]  # (B, r)

        def apply(q: torch.Tensor) -> torch.Tensor:
            w = q.view(b, d + 1, k)
            rows = base[:, None, None] * w[:, :-1] + v @ (extra[..., None] * (v.mT @ w[:, :-1]))
            return torch.cat([rows, w[:, -1:] / CURVATURE], 1).reshape(b, -1)

        return apply


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
    # (residual^T x)^T, not x^T residual: x is read row by row, 3x faster at 3,072-d on a CPU
    grad_w = (residual.transpose(1, 2) @ p.x).transpose(1, 2) + weights * penalty[:, None, None]
    return loss, torch.cat([grad_w, residual.sum(1, keepdim=True)], 1)


def _direction(g: torch.Tensor, pairs: list[tuple], precondition) -> torch.Tensor:
    """-H g by the L-BFGS two-loop recursion, each problem with its own pairs (a pair with rho 0,
    skipped for lack of curvature, changes nothing), from the initial inverse Hessian gamma M:
    M = `precondition`, gamma = s'y / y'My of the newest pair (Nocedal & Wright, 7.20)."""
    q, alphas = g.clone(), []
    for s, y, rho in reversed(pairs):
        a = rho * (s * q).sum(1)
        q -= a[:, None] * y
        alphas.append(a)
    q = precondition(q)
    if pairs:
        s, y, rho = pairs[-1]
        ymy = (y * precondition(y)).sum(1)
        q *= torch.where(rho > 0, 1 / (rho * ymy).clamp_min(1e-30), 1.0)[:, None]
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
    by preconditioned L-BFGS from `init` (zeros when None): warm-started along a
    regularisation path, a fit needs far fewer iterations."""
    b, n, d = p.x.shape
    k = p.present.shape[1]
    w = torch.zeros(b, d + 1, k, dtype=p.x.dtype, device=p.x.device) if init is None else init
    penalty = p.penalty(C.to(p.x))
    precondition = p.preconditioner(penalty)

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
        direction = torch.where(active[:, None], _direction(g, pairs, precondition), 0.0)
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

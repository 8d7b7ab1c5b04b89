"""Classifiers on frozen features: the paper's L2-regularised multinomial logistic regression
(L-BFGS, strength chosen on a validation split) and the weighted-cosine kNN."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from simclr.data.sampling import sample_per_class
from simclr.logistic import Problems, predict, predict_shared, scaling, unscaled
from simclr.logistic import fit as fit_logistic


@dataclass(frozen=True)
class ProbeFit:
    predictions: np.ndarray  # on the test features
    C: float  # the inverse L2 strength used for the final fit
    validated: bool  # False when the subset was too small to hold out a validation split
    val_accuracy: float | None


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, ...]:
    """(fit, val) indices, sorted: `fraction` of each class held out (`sample_per_class`), but
    never a class's last image, so every class that has one stays in the fit part."""
    val = sample_per_class(labels, fraction, seed, spare=1)
    return np.setdiff1d(np.arange(len(labels)), val), val


def logistic_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    grid: tuple[float, ...],
    val_fraction: float,
    max_iter: int,
    seed: int,
    device: torch.device | None = None,
) -> ProbeFit:
    """The transfer protocol of the paper (after Kornblith et al. 2019): choose C on a validation
    split of the labelled training subset, then refit on the whole subset with that C and
    predict the test features. Ties go to the stronger regularisation."""
    whole = [(seed, np.arange(len(train_y)))]
    [fit] = logistic_probes(train_x, train_y, whole, test_x, grid, val_fraction, max_iter, device)
    return fit


def logistic_probes(
    train_x: np.ndarray,
    train_y: np.ndarray,
    subsets: list[tuple[int, np.ndarray]],
    test_x: np.ndarray,
    grid: tuple[float, ...],
    val_fraction: float,
    max_iter: int,
    device: torch.device | None = None,
) -> list[ProbeFit]:
    """`logistic_probe` on each (seed, indices into train) label subset, on `device` (default
    CPU): the subsets whose fit and validation parts have the same sizes (the seeds of one
    fraction) are solved together, one batched L-BFGS per C, warm-started along the grid."""
    device = device or torch.device("cpu")
    train = torch.as_tensor(np.asarray(train_x, dtype=np.float32)).to(device)
    labels = torch.as_tensor(np.asarray(train_y, dtype=np.int64)).to(device)
    test = torch.as_tensor(np.asarray(test_x, dtype=np.float32)).to(device)
    n_classes = int(labels.max()) + 1
    fits: dict[int, ProbeFit] = {}
    groups: dict[tuple, list] = {}
    for i, (seed, idx) in enumerate(subsets):
        y = np.asarray(train_y)[idx]
        classes = np.unique(y)
        if len(classes) < 2:  # one class only (tiny fractions of 2-class sets): predict it
            fits[i] = ProbeFit(np.full(len(test_x), classes[0]), float("nan"), False, None)
            continue
        fit, val = validation_split(y, val_fraction, seed)
        validated = bool(len(val)) and len(np.unique(y[fit])) >= 2
        groups.setdefault((len(fit), len(val), validated), []).append((i, idx, fit, val))
    for (_, _, validated), members in groups.items():
        batch = _Batch(train, labels, members, n_classes, device)
        solved = _probe_batch(batch, test, sorted(grid), validated, max_iter)
        fits.update(zip([m[0] for m in members], solved, strict=True))
    return [fits[i] for i in range(len(subsets))]


class _Batch:
    """Stacked label subsets of one size: rows of the fit part, the validation part and the whole
    subset, as index tensors into the training features."""

    def __init__(self, train, labels, members, n_classes: int, device):
        def rows(part: int | None) -> torch.Tensor:
            picked = [m[1] if part is None else m[1][m[part]] for m in members]
            return torch.as_tensor(np.stack(picked), device=device)

        self.train, self.labels, self.n_classes = train, labels, n_classes
        self.fit, self.val, self.whole = rows(2), rows(3), rows(None)

    def problems(self, rows: torch.Tensor) -> tuple[Problems, tuple[torch.Tensor, torch.Tensor]]:
        """The problems of `rows`, standardized on themselves, and that scaling (mean, std)."""
        x = self.train[rows]
        mean, std = scaling(x)
        return Problems.of((x - mean) / std, self.labels[rows], self.n_classes), (mean, std)


def _probe_batch(batch: _Batch, test, grid: list[float], validated: bool, max_iter: int):
    """ProbeFit of each subset of `batch`: the C path on the fit part scored on the validation
    part (when `validated`), then the refit on the whole subset with the chosen C."""
    b = len(batch.whole)
    dtype, device = batch.train.dtype, batch.train.device
    choice, init, best = [len(grid) // 2] * b, None, None
    if validated:
        fit, (mean, std) = batch.problems(batch.fit)
        x_val, y_val = (batch.train[batch.val] - mean) / std, batch.labels[batch.val]
        w, path = None, []
        for C in grid:  # increasing C: each fit starts from the more regularised solution
            w = fit_logistic(fit, torch.full((b,), C, dtype=dtype, device=device), w, max_iter)
            hits = predict(w, x_val, fit.present) == y_val
            path.append((hits.double().mean(1).cpu(), w))
        accuracy = torch.stack([a for a, _ in path]).numpy()  # (grid, b)
        best = accuracy.max(0)
        choice = [int(np.flatnonzero(accuracy[:, j] == best[j])[0]) for j in range(b)]
        init = torch.stack([path[c][1][j] for j, c in enumerate(choice)])
    # else every class has a single image: nothing to validate on; the grid's middle value
    whole, (mean, std) = batch.problems(batch.whole)
    C = torch.tensor([grid[c] for c in choice], dtype=dtype, device=device)
    w = unscaled(fit_logistic(whole, C, init, max_iter), mean, std)
    predictions = predict_shared(w, test, whole.present).cpu().numpy()
    return [
        ProbeFit(
            predictions[j], grid[choice[j]], validated, None if best is None else float(best[j])
        )
        for j in range(b)
    ]


@torch.no_grad()
def knn_predict(
    train_x: torch.Tensor | np.ndarray,
    train_y: torch.Tensor | np.ndarray,
    test_x: torch.Tensor | np.ndarray,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> np.ndarray:
    """Weighted cosine kNN (Wu et al. 2018, the usual SimCLR monitor): each test feature votes
    with its k most cosine-similar training features, each weighted exp(similarity / T)."""
    train_x = F.normalize(torch.as_tensor(train_x).float(), dim=1)
    test_x = F.normalize(torch.as_tensor(test_x).float(), dim=1)
    train_y = torch.as_tensor(train_y).long().to(train_x.device)
    n_classes = int(train_y.max()) + 1
    k = min(k, len(train_x))
    predictions = []
    for i in range(0, len(test_x), chunk):
        sim, idx = (test_x[i : i + chunk] @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(len(sim), n_classes, device=sim.device, dtype=sim.dtype)
        votes.scatter_add_(1, train_y[idx], torch.exp(sim / temperature))
        predictions.append(votes.argmax(1).cpu())
    return torch.cat(predictions).numpy()


def knn_accuracy(
    train_x, train_y, test_x, test_y, k: int = 200, temperature: float = 0.1, chunk: int = 1024
) -> float:
    predictions = knn_predict(train_x, train_y, test_x, k, temperature, chunk)
    return float(np.mean(predictions == np.asarray(torch.as_tensor(test_y).cpu())))


def accuracies(predictions: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """Top-1 accuracy and mean per-class accuracy (the mean of the recalls of the classes
    present in `labels`)."""
    correct = predictions == labels
    per_class = [correct[labels == c].mean() for c in np.unique(labels)]
    return float(correct.mean()), float(np.mean(per_class))

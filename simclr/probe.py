"""Classifiers on frozen features: the paper's L2-regularised multinomial logistic regression
(L-BFGS, strength chosen on a validation split) and the weighted-cosine kNN."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from simclr.data.sampling import sample_per_class


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


def _regularisation_path(
    x: np.ndarray, y: np.ndarray, grid: tuple[float, ...], max_iter: int, x_eval: np.ndarray
) -> list[tuple[float, np.ndarray]]:
    """[(C, predictions on x_eval)] for each C in increasing order: standardise on x, then fit,
    each fit warm-started from the previous solution (far fewer L-BFGS iterations in total)."""
    scaler = StandardScaler().fit(x)
    xs, xe = scaler.transform(x), scaler.transform(x_eval)
    clf = LogisticRegression(max_iter=max_iter, warm_start=True)
    out = []
    with warnings.catch_warnings():
        # Weakly regularised fits on separable features stop at max_iter; that is expected.
        warnings.simplefilter("ignore", ConvergenceWarning)
        for C in sorted(grid):
            out.append((C, clf.set_params(C=C).fit(xs, y).predict(xe)))
    return out


def logistic_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    grid: tuple[float, ...],
    val_fraction: float,
    max_iter: int,
    seed: int,
) -> ProbeFit:
    """The transfer protocol of the paper (after Kornblith et al. 2019): choose C on a validation
    split of the labelled training subset, then refit on the whole subset with that C and
    predict the test features. Ties go to the stronger regularisation."""
    classes = np.unique(train_y)
    if len(classes) < 2:  # one class only (tiny fractions of 2-class sets): predict it
        return ProbeFit(np.full(len(test_x), classes[0]), float("nan"), False, None)
    fit, val = validation_split(train_y, val_fraction, seed)
    if len(val) and len(np.unique(train_y[fit])) >= 2:
        path = _regularisation_path(train_x[fit], train_y[fit], grid, max_iter, train_x[val])
        scores = [(float(np.mean(pred == train_y[val])), C) for C, pred in path]
        val_accuracy = max(s for s, _ in scores)
        best_C = min(C for s, C in scores if s == val_accuracy)
        validated = True
    else:  # every class has a single image: nothing to validate on; the grid's middle value
        best_C, val_accuracy, validated = sorted(grid)[len(grid) // 2], None, False
    [(_, predictions)] = _regularisation_path(train_x, train_y, (best_C,), max_iter, test_x)
    return ProbeFit(predictions, best_C, validated, val_accuracy)


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

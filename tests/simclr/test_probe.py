"""simclr/probe.py: the weighted-cosine kNN and the accuracies by hand on a few points, and the
batched logistic probe giving each label subset what it gives that subset alone (its fit
against scikit-learn: tests/simclr/test_logistic.py; its choice of C: test_evaluate.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from simclr.probe import accuracies, knn_accuracy, knn_predict, logistic_probes

# Training features on the unit circle's axes; class 0 on the x axis, class 1 on the y axis
TRAIN = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 1.0], [0.0, 3.0], [-1.0, 0.0]], np.float32)
LABELS = np.array([0, 0, 1, 1, 1])


def test_knn_weighs_each_neighbour_by_exp_of_its_cosine_over_t():
    # A test point at 45 degrees is as similar to either axis: cos = 0.707 to each of the two
    # class-0 and the two class-1 points on the positive axes, -0.707 to the (class 1) point at
    # (-1, 0). With k = 5 the votes are 2 e^(0.707/T) for class 0 and 2 e^(0.707/T) + e^(-0.707/T)
    # for class 1: class 1. With k = 4 the far point is out, a tie: the lower class index wins.
    test = np.array([[1.0, 1.0]], np.float32)
    assert knn_predict(TRAIN, LABELS, test, k=5, temperature=0.1).tolist() == [1]
    assert knn_predict(TRAIN, LABELS, test, k=4, temperature=0.1).tolist() == [0]
    # Slightly towards x: the two class-0 points outvote the three class-1 ones at T = 0.1 ...
    toward_x = np.array([[1.0, 0.9]], np.float32)
    assert knn_predict(TRAIN, LABELS, toward_x, k=5, temperature=0.1).tolist() == [0]
    # ... while at a high temperature every vote is nearly 1 and the larger class wins.
    c0 = 2 * math.exp(1.0 / math.hypot(1, 0.9) / 100)
    c1 = math.exp(0.9 / math.hypot(1, 0.9) / 100) * 2 + math.exp(-1 / math.hypot(1, 0.9) / 100)
    assert c1 > c0
    assert knn_predict(TRAIN, LABELS, toward_x, k=5, temperature=100.0).tolist() == [1]


def test_knn_takes_k_above_the_training_size_and_chunks_without_changing_the_answer():
    rng = np.random.default_rng(0)
    train, labels = rng.normal(size=(30, 8)), rng.integers(0, 3, 30)
    test = rng.normal(size=(50, 8))
    whole = knn_predict(train, labels, test, k=1000)  # k is cut to the 30 training points
    assert np.array_equal(whole, knn_predict(train, labels, test, k=30, chunk=7))
    nearest = knn_predict(train, labels, train, k=1)  # each point is its own nearest neighbour
    assert np.array_equal(nearest, labels)
    assert knn_accuracy(train, labels, train, torch.as_tensor(labels), k=1) == 1.0


def test_accuracies_are_top1_and_the_mean_of_the_class_recalls():
    labels = np.array([0, 0, 0, 0, 1, 1, 2, 2])
    predictions = np.array([0, 0, 0, 1, 1, 0, 2, 2])
    top1, per_class = accuracies(predictions, labels)
    assert top1 == pytest.approx(6 / 8)
    assert per_class == pytest.approx((3 / 4 + 1 / 2 + 2 / 2) / 3)


def test_subsets_solved_together_give_what_each_gives_alone_and_one_class_predicts_it():
    rng = np.random.default_rng(1)
    y = np.repeat(np.arange(3), 20)
    x = rng.normal(size=(60, 5)) + 1.5 * np.eye(5)[y]
    test = rng.normal(size=(30, 5)) + 1.5 * np.eye(5)[np.repeat(np.arange(3), 10)]
    subsets = [(s, np.sort(rng.choice(60, 30, replace=False))) for s in range(3)]
    subsets.append((9, np.flatnonzero(y == 2)[:4]))  # one class only
    grid = (0.01, 0.1, 1.0)
    together = logistic_probes(x, y, subsets, test, grid, 0.3, 200)
    for subset, fit in zip(subsets[:3], together, strict=False):
        [alone] = logistic_probes(x, y, [subset], test, grid, 0.3, 200)
        assert fit.C == alone.C and fit.validated and fit.val_accuracy == alone.val_accuracy
        assert np.array_equal(fit.predictions, alone.predictions)
    single = together[3]
    assert (single.predictions == 2).all() and math.isnan(single.C) and not single.validated

"""Is SimCLR better than a baseline, or is it the seed? Paired tests on the same label subsets
and the same test images."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats


def paired_t_p(a: list[float], b: list[float]) -> float:
    """Two-sided p-value of a paired t-test of accuracies over seeds (run i of both methods used
    the same label subset). Where the differences have no spread the t statistic is undefined
    (0/0) or infinite; then the exact sign-flip test over the seeds is used, whose smallest
    two-sided p-value is 2 / 2**n: a constant gap over 2 seeds is p = 0.5, never p = 0."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if len(d) < 2:
        raise ValueError("a paired t-test needs at least 2 pairs")
    if np.allclose(d, d[0], rtol=0, atol=1e-12):  # no spread
        return 1.0 if abs(d[0]) <= 1e-12 else min(1.0, 2.0 ** (1 - len(d)))
    return float(stats.ttest_rel(a, b).pvalue)


def mcnemar_p(correct_a: np.ndarray, correct_b: np.ndarray) -> float:
    """Two-sided p-value of the exact McNemar test on paired 0/1 correctness: of the images
    exactly one method got right, b went to a and c to b; under the null each of them goes
    either way with probability 1/2, so b ~ Binomial(b + c, 1/2). This is the paired sign-flip
    permutation test of the per-image difference, computed exactly: no Monte Carlo, no floor."""
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    if only_a + only_b == 0:  # the two methods agree on every image
        return 1.0
    return float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue)


def compare(runs_a: list[dict], runs_b: list[dict]) -> dict:
    """SimCLR (a) vs a baseline (b) over paired runs, each {"accuracy", "correct"}: a paired
    t-test over seeds when there are 2 or more, else the exact McNemar test on the predictions."""
    acc_a = [r["accuracy"] for r in runs_a]
    acc_b = [r["accuracy"] for r in runs_b]
    diff = float(np.mean(acc_a) - np.mean(acc_b))
    if len(runs_a) >= 2:
        p, test = paired_t_p(acc_a, acc_b), f"paired t-test over {len(runs_a)} seeds"
    else:
        p = mcnemar_p(runs_a[0]["correct"], runs_b[0]["correct"])
        test = f"exact McNemar test on {len(runs_a[0]['correct'])} test predictions"
    return {"diff": diff, "p": p if math.isfinite(p) else 1.0, "test": test}


def _constant(x: np.ndarray) -> bool:
    return bool(np.allclose(x, x[0], rtol=0, atol=1e-12))


def paired_difference(a, b, confidence: float = 0.95) -> dict:
    """mean(a - b) over pairs, its confidence interval (Student's t, df = pairs - 1) and the
    two-sided p of the paired t-test (`paired_t_p`: the exact sign-flip test where the
    differences have no spread; the interval is then the one difference)."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    d = a - b
    diff, p = float(d.mean()), paired_t_p(a, b)
    if _constant(d):  # the mean, not d[0]: they may differ in the last bit
        low = high = diff
    else:
        ci = stats.ttest_rel(a, b).confidence_interval(confidence)
        low, high = float(ci.low), float(ci.high)
    return {"diff": diff, "ci": [low, high], "p": p}


def welch_difference(a, b, confidence: float = 0.95) -> dict:
    """mean(a) - mean(b) of two independent samples, Welch's confidence interval and two-sided
    p (unequal variances, Welch-Satterthwaite df). Where neither sample has any spread, the
    exact permutation test of the difference of means, and the interval is the difference."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        raise ValueError("Welch's t-test needs at least 2 values on each side")
    diff = float(a.mean() - b.mean())
    if _constant(a) and _constant(b):
        test = stats.permutation_test(
            (a, b),
            lambda x, y, axis: np.mean(x, axis=axis) - np.mean(y, axis=axis),
            permutation_type="independent",
            n_resamples=np.inf,
            vectorized=True,
        )
        p = 1.0 if abs(diff) <= 1e-12 else float(test.pvalue)
        return {"diff": diff, "ci": [diff, diff], "p": p}
    result = stats.ttest_ind(a, b, equal_var=False)
    ci = result.confidence_interval(confidence)
    return {"diff": diff, "ci": [float(ci.low), float(ci.high)], "p": float(result.pvalue)}


def over_replicas(a, b) -> dict:
    """SimCLR (a) vs a baseline (b), each an R x S table of accuracies: row r holds replica r's
    runs on its S label subsets, run (r, i) of both on the same subset. Each replica's mean
    difference d_r is one observation, and the test is the one-sample t-test of d_1..d_R
    (df R - 1): the F-test of the method effect in a nested ANOVA with replicas random and
    label subsets nested in them (F = t^2), so its p and its confidence interval include the
    pretraining's variation and the subsets'. Needs R >= 2."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape or a.shape[0] < 2:
        raise ValueError(f"need two R x S tables with R >= 2, got {a.shape} and {b.shape}")
    out = paired_difference(a.mean(axis=1), b.mean(axis=1))
    replicas, subsets = a.shape
    test = f"t-test over {replicas} pretraining replicas (x {subsets} label subsets each)"
    return {**out, "test": test}


def false_discovery(ps: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q) of a family of tests, in the given order."""
    return [float(q) for q in stats.false_discovery_control(ps)] if ps else []


ALPHA = 0.05  # a difference is beyond the noise when its q (and so its p) is below this
CANNOT_TELL = "cannot tell"


def verdict(p: float | None, q: float | None) -> str:
    """Whether a difference is beyond the noise, one rule for every table: "yes" where its
    Benjamini-Hochberg q over the family is below ALPHA, "p < 0.05 only" where p alone is, "no"
    otherwise, and CANNOT_TELL where there is no test."""
    if p is None:
        return CANNOT_TELL
    if q < ALPHA:
        return "yes"
    return f"p < {ALPHA} only" if p < ALPHA else "no"

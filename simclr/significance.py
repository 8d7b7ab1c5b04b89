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

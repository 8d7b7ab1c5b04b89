"""Is SimCLR better than a baseline, or is it the seed? Paired tests on the same label subsets
and the same test images."""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

PERMUTATIONS = 10_000
CHUNK = 1_000  # permutations drawn at a time


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


def permutation_p(correct_a: np.ndarray, correct_b: np.ndarray, seed: int = 0) -> float:
    """Two-sided p-value of a paired permutation test on test predictions: under the null the
    two methods are exchangeable on each test image, so the sign of each per-image difference
    in correctness is flipped at random. Monte Carlo with PERMUTATIONS draws, counting the
    observed assignment (p is never 0)."""
    d = np.asarray(correct_a, dtype=np.float64) - np.asarray(correct_b, dtype=np.float64)
    observed = abs(d.mean())
    d = d[d != 0]  # images both got right or both wrong do not move the statistic
    if len(d) == 0:
        return 1.0
    rng = np.random.default_rng(seed)
    n, extreme = len(correct_a), 0
    for start in range(0, PERMUTATIONS, CHUNK):  # bounded memory on large test splits
        signs = rng.choice(np.array([-1.0, 1.0]), size=(min(CHUNK, PERMUTATIONS - start), len(d)))
        extreme += int((np.abs(signs @ d / n) >= observed - 1e-12).sum())
    return float((1 + extreme) / (1 + PERMUTATIONS))


def compare(runs_a: list[dict], runs_b: list[dict], seed: int = 0) -> dict:
    """SimCLR (a) vs a baseline (b) over paired runs, each {"accuracy", "correct"}: a paired
    t-test over seeds when there are 2 or more, else a permutation test on the predictions."""
    acc_a = [r["accuracy"] for r in runs_a]
    acc_b = [r["accuracy"] for r in runs_b]
    diff = float(np.mean(acc_a) - np.mean(acc_b))
    if len(runs_a) >= 2:
        p, test = paired_t_p(acc_a, acc_b), f"paired t-test over {len(runs_a)} seeds"
    else:
        p = permutation_p(runs_a[0]["correct"], runs_b[0]["correct"], seed)
        test = f"paired permutation test on {len(runs_a[0]['correct'])} test predictions"
    return {"diff": diff, "p": p if math.isfinite(p) else 1.0, "test": test}

"""The one per-class sampler: a seeded share of every class, drawn without replacement.

It subsets a dataset when it is prepared (`data.fraction`, `data.max_per_class`), picks the
evaluation's label subsets (`evaluate.fractions`) and holds out the linear probe's validation
split (`evaluate.val_fraction`), so the three round the same way:

    k = round(fraction x n)   the nearest integer, a half to the even one (Python's round:
                              14.5 -> 14, 15.5 -> 16)
    at least 1, at most `cap` when there is one, and at most n - `spare`

of a class of n images. With `spare` = 1 a class's last image is never taken (a class of one
image gives none).
"""

from __future__ import annotations

import numpy as np


def per_class_count(n: int, fraction: float, cap: int | None = None, spare: int = 0) -> int:
    """How many of a class of `n` images the sampler takes (the rule above)."""
    k = max(1, round(fraction * n))
    if cap is not None:
        k = min(k, cap)
    return max(0, min(k, n - spare))


def sample_per_class(
    labels: np.ndarray, fraction: float, seed: int, cap: int | None = None, spare: int = 0
) -> np.ndarray:
    """Sorted indices of `per_class_count` images of every class of `labels`, drawn without
    replacement by one generator seeded `seed`, class by class in increasing label order."""
    rng = np.random.default_rng(seed)
    picked = [np.empty(0, dtype=np.int64)]
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = per_class_count(len(members), fraction, cap, spare)
        picked.append(rng.choice(members, size=k, replace=False))
    return np.sort(np.concatenate(picked))

"""The one per-class sampler behind data.fraction / max_per_class, the evaluation's label
subsets and the probe's validation split: its rounding, its bounds and its draws."""

import numpy as np
import pytest

from simclr.data.sampling import per_class_count, sample_per_class
from simclr.evaluate import label_subsets
from simclr.probe import validation_split


@pytest.mark.parametrize(
    ("n", "fraction", "k"),
    [
        (145, 0.1, 14),  # 14.5: a half goes to the even neighbour
        (25, 0.1, 2),  # 2.5 -> 2
        (7, 0.5, 4),  # 3.5 -> 4
        (146, 0.1, 15),  # 14.6 -> 15
        (143, 0.1, 14),  # 14.3 -> 14
        (30, 0.01, 1),  # 0.3 -> 0, raised to at least one
        (40, 1.0, 40),
    ],
)
def test_count_is_the_share_rounded_half_to_even_and_at_least_one(n, fraction, k):
    assert per_class_count(n, fraction) == k


def test_count_bounds_cap_and_spare():
    assert per_class_count(100, 0.5, cap=10) == 10
    assert per_class_count(100, 0.05, cap=10) == 5
    assert per_class_count(10, 0.9, spare=1) == 9 and per_class_count(10, 1.0, spare=1) == 9
    assert per_class_count(2, 0.1, spare=1) == 1
    assert per_class_count(1, 0.5, spare=1) == 0  # a class's only image is never taken


def test_sample_keeps_the_count_of_every_class_and_no_index_twice():
    labels = np.repeat(np.array([3, 0, 7, 1, 5]), [145, 15, 25, 10, 3])
    np.random.default_rng(0).shuffle(labels)
    idx = sample_per_class(labels, 0.1, seed=0)
    counts = {c: int((labels[idx] == c).sum()) for c in np.unique(labels)}
    assert counts == {0: 2, 1: 1, 3: 14, 5: 1, 7: 2}
    assert len(np.unique(idx)) == len(idx) and np.array_equal(idx, np.sort(idx))
    capped = sample_per_class(labels, 1.0, seed=0, cap=12)
    assert np.bincount(labels[capped]).tolist() == [12, 10, 0, 12, 0, 3, 0, 12]


def test_sample_is_seeded_and_draws_class_by_class_with_one_generator():
    labels = np.tile(np.arange(4), 50)
    a = sample_per_class(labels, 0.2, seed=3)
    assert np.array_equal(a, sample_per_class(labels, 0.2, seed=3))
    assert not np.array_equal(a, sample_per_class(labels, 0.2, seed=4))
    # The draw itself, pinned: label subsets (and so every metric) depend on it.
    rng = np.random.default_rng(3)
    expected = [rng.choice(np.flatnonzero(labels == c), 10, replace=False) for c in range(4)]
    assert np.array_equal(a, np.sort(np.concatenate(expected)))


def test_the_whole_split_at_fraction_one_is_every_index_in_order():
    labels = np.random.default_rng(0).integers(-1, 5, 300)  # -1: unlabelled images
    assert np.array_equal(sample_per_class(labels, 1.0, seed=9), np.arange(300))


def test_label_subsets_use_the_sampler_one_seed_per_subset():
    labels = np.repeat(np.arange(3), [145, 25, 7])

    subsets = label_subsets(labels, seed=5, fractions=(0.1, 1.0), seeds=3)
    assert [s for s, _ in subsets["0.1"]] == [5, 6, 7]
    for s, idx in subsets["0.1"]:
        assert np.array_equal(idx, sample_per_class(labels, 0.1, s))
        assert np.bincount(labels[idx]).tolist() == [14, 2, 1]


def test_validation_split_never_takes_a_class_last_image():
    labels = np.repeat(np.arange(5), [10, 5, 2, 1, 25])
    fit, val = validation_split(labels, 0.2, seed=0)
    assert set(fit).isdisjoint(val) and sorted([*fit, *val]) == list(range(len(labels)))
    assert np.bincount(labels[val], minlength=5).tolist() == [2, 1, 1, 0, 5]
    assert set(labels[fit]) == {0, 1, 2, 3, 4}  # every class keeps at least one to fit on
    assert np.array_equal(val, sample_per_class(labels, 0.2, 0, spare=1))
    one_each = np.arange(4)
    fit, val = validation_split(one_each, 0.5, seed=0)
    assert fit.tolist() == [0, 1, 2, 3] and val.size == 0

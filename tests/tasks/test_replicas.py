"""Pretraining-seed replicas: the seeds each replica uses, the statistics over replicas (against
scipy and the textbook formulas on fixed numbers), the pooling of replicas into summary.json
and the headline metrics, and the budget of metric columns `dvc exp show` lists."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import ROOT, fake_details
from scipy import stats

from simclr.config import Params, from_dict, load_params
from simclr.errors import PipelineError
from simclr.models import build_model
from simclr.significance import (
    false_discovery,
    over_replicas,
    paired_difference,
    welch_difference,
)
from tasks.replicas import first_label_seed, pretraining_seed, replica_arg, trained_with
from tasks.summary import dataset_summary

# Fixed accuracies: 3 replicas x 4 label subsets of SimCLR and of a baseline on the same subsets.
A = [[0.81, 0.78, 0.84, 0.80], [0.75, 0.77, 0.74, 0.79], [0.86, 0.83, 0.85, 0.88]]
B = [[0.70, 0.72, 0.69, 0.74], [0.73, 0.70, 0.75, 0.71], [0.72, 0.69, 0.74, 0.70]]


def test_the_test_over_replicas_is_scipys_t_test_of_the_replica_means():
    out = over_replicas(A, B)
    d = np.mean(A, axis=1) - np.mean(B, axis=1)
    assert out["p"] == pytest.approx(stats.ttest_1samp(d, 0).pvalue, rel=1e-12)
    assert out["diff"] == pytest.approx(np.mean(A) - np.mean(B), abs=1e-15)
    half = stats.t.ppf(0.975, df=2) * np.std(d, ddof=1) / np.sqrt(3)
    assert out["ci"] == pytest.approx([d.mean() - half, d.mean() + half], rel=1e-12)
    assert out["test"] == "t-test over 3 pretraining replicas (x 4 label subsets each)"


def test_the_test_over_replicas_is_the_nested_anova_f_test():
    """Replicas random, label subsets nested in them: the F of the method effect against the
    replicas' mean square, computed in float64 from the sums of squares, is t^2."""
    d = np.asarray(A, dtype=np.float64) - np.asarray(B, dtype=np.float64)  # R x S differences
    r, s = d.shape
    grand = d.mean()
    ms_method = r * s * grand**2  # 1 df: the mean difference against 0
    ms_replicas = s * np.sum((d.mean(axis=1) - grand) ** 2) / (r - 1)
    f = ms_method / ms_replicas
    p = stats.f.sf(f, 1, r - 1)
    assert over_replicas(A, B)["p"] == pytest.approx(p, rel=1e-10)


def test_the_test_over_replicas_needs_two_replicas_and_equal_tables():
    with pytest.raises(ValueError, match="R >= 2"):
        over_replicas([A[0]], [B[0]])
    with pytest.raises(ValueError):
        over_replicas(A, B[:2])


def test_paired_difference_matches_scipy_and_handles_no_spread():
    a, b = [0.90, 0.93, 0.88, 0.91], [0.85, 0.86, 0.87, 0.83]
    out = paired_difference(a, b)
    ref = stats.ttest_rel(a, b)
    assert out["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    ci = ref.confidence_interval(0.95)
    assert out["ci"] == pytest.approx([ci.low, ci.high], rel=1e-12)
    # A constant gap over 3 replicas: the exact sign-flip test (2 / 2**3), the gap as interval.
    same = paired_difference([0.9, 0.8, 0.7], [0.8, 0.7, 0.6])
    assert same["p"] == 0.25 and same["ci"] == pytest.approx([0.1, 0.1])
    assert paired_difference([0.5, 0.6], [0.5, 0.6])["p"] == 1.0
    # Gaps equal but for the last bit (1/12 - 0 and 1/4 - 1/6): the mean lies in the interval.
    last_bit = paired_difference([1 / 12, 1 / 4], [0.0, 1 / 6])
    assert last_bit["ci"][0] <= last_bit["diff"] <= last_bit["ci"][1]


def test_welch_difference_matches_scipy_and_the_satterthwaite_formula():
    a, b = [0.91, 0.87, 0.93], [0.84, 0.86, 0.80, 0.83, 0.85]
    out = welch_difference(a, b)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert out["p"] == pytest.approx(ref.pvalue, rel=1e-12)
    va, vb = np.var(a, ddof=1) / 3, np.var(b, ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 4)
    half = stats.t.ppf(0.975, df) * np.sqrt(va + vb)
    diff = np.mean(a) - np.mean(b)
    assert out["ci"] == pytest.approx([diff - half, diff + half], rel=1e-10)
    # No spread on either side: the exact permutation test, 2 of the C(4, 2) = 6 splits.
    flat = welch_difference([0.9, 0.9], [0.8, 0.8])
    assert flat["p"] == pytest.approx(2 / 6) and flat["ci"] == pytest.approx([0.1, 0.1])
    with pytest.raises(ValueError):
        welch_difference([0.9], [0.8, 0.7])


def test_false_discovery_is_benjamini_hochberg():
    ps = [0.01, 0.04, 0.03, 0.5]
    # sorted p * m / rank, made monotone from the largest rank down
    assert false_discovery(ps) == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert false_discovery([]) == []


def test_a_nan_metric_is_cannot_tell_and_left_out_of_the_q_over_metrics():
    from tasks.comparison import compare_groups, comparison_markdown
    from tasks.experiments import Group

    def group(name: str, linear: list[float], knn: list[float]) -> Group:
        values = {
            m: {str(r): v for r, v in enumerate(vs)} for m, vs in (("linear", linear), ("knn", knn))
        }
        return Group([name], ["abc1234"], name, {}, values)

    base = group("base", [0.70, 0.71, 0.72], [0.60, 0.62, 0.64])
    other = group("other", [0.81, 0.84, 0.82], [0.61, float("nan"), 0.63])  # a diverged run
    rows = {r["metric"]: r for r in compare_groups(base, other)}
    knn, linear = rows["knn"], rows["linear"]
    assert knn["p"] is None and knn["q"] is None and knn["beyond noise"] == "cannot tell"
    assert knn["test"] == "cannot tell: a value is NaN or inf"
    # the other metric keeps its test; its q is over the metrics that have a p
    assert linear["q"] == pytest.approx(linear["p"]) and linear["beyond noise"] == "yes"
    assert "| knn |" in comparison_markdown(base, other, list(rows.values()))


def test_replica_seeds_nest_label_subsets_and_share_the_random_init():
    params = from_dict(Params, {"seed": 7, "replicas": [0, 1, 4], "evaluate": {"seeds": 3}})
    assert [pretraining_seed(params, r) for r in params.replicas] == [7, 8, 11]
    assert [first_label_seed(params, r) for r in params.replicas] == [7, 10, 19]
    # subsets of different replicas never share a seed
    seeds = [first_label_seed(params, r) + i for r in params.replicas for i in range(3)]
    assert len(set(seeds)) == len(seeds)
    assert trained_with(params, 4).seed == 11 and trained_with(params, 4).model == params.model
    # Replica 0 of seed 0 is the single run of the pipeline before replicas: same seeds.
    default = load_params(ROOT / "params.yaml")
    assert pretraining_seed(default, 0) == first_label_seed(default, 0) == default.seed == 0


def test_random_init_baseline_is_the_replicas_starting_point():
    """The random-init encoder of replica r is the network its pretraining starts from."""
    from simclr.device import seed_everything
    from tasks.evaluate import random_baseline

    params = from_dict(Params, {"model": {"widths": [8, 16], "blocks": [1, 1]}})
    baseline = random_baseline(params, 3, {"in_channels": 1, "image_size": 8}, "cpu")
    seed_everything(3, torch.device("cpu"))  # what simclr.train does before building
    start, _ = build_model(1, 8, widths=(8, 16), blocks=(1, 1))
    for (k, v), w in zip(baseline.state_dict().items(), start.state_dict().values(), strict=True):
        assert torch.equal(v, w), k


def test_a_stage_refuses_a_replica_params_yaml_does_not_list():
    params = from_dict(Params, {"replicas": [0, 2]})
    assert replica_arg(params, None) == 0 and replica_arg(params, "2") == 2
    for bad in ("1", "x", "-1"):
        with pytest.raises(PipelineError, match=r"^params.yaml: replicas has no .*allowed: 0, 2$"):
            replica_arg(params, bad)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], "params.yaml: replicas = []; allowed: a non-empty list of integers >= 0"),
        ([0, 0], "params.yaml: replicas = [0, 0]; allowed: a list without repeats"),
        (3, "params.yaml: replicas = 3; allowed: a non-empty list of integers >= 0"),
    ],
)
def test_bad_replicas_are_one_line(value, message):
    with pytest.raises(PipelineError) as e:
        from_dict(Params, {"replicas": value})
    assert str(e.value) == message


# --- pooling replicas -------------------------------------------------------------------------


def test_pooled_cells_and_tests_over_replicas_from_fixed_runs():
    replicas = {
        r: fake_details(
            {
                "linear": {
                    "simclr": {"0.1": A[r], "1.0": [A[r][0]]},
                    "raw_pixels": {"0.1": B[r], "1.0": [B[r][0]]},
                }
            }
        )
        for r in range(3)
    }
    out = dataset_summary(replicas, "pretraining set")
    cell = out["linear"]["simclr"]["0.1"]
    assert cell["mean"] == pytest.approx(np.mean(A)) and cell["n"] == 12
    assert cell["std"] == pytest.approx(np.std(A, ddof=1))
    assert cell["replica_std"] == pytest.approx(np.std(np.mean(A, axis=1), ddof=1))
    assert (cell["replicas"], cell["subsets"]) == (3, 4)
    assert cell["by_replica"] == pytest.approx({str(r): np.mean(A[r]) for r in range(3)})
    assert cell["mean_per_class"] == pytest.approx(np.mean(A) - 0.01)
    test = out["significance"]["linear"]["raw_pixels"]["0.1"]
    assert test == {**over_replicas(A, B)}  # the test over replicas, nothing else
    full = out["significance"]["linear"]["raw_pixels"]["1.0"]  # 1 run per replica at 100%
    a0, b0 = [row[0] for row in A], [row[0] for row in B]
    assert full["p"] == pytest.approx(stats.ttest_rel(a0, b0).pvalue, rel=1e-12)


def test_one_replica_keeps_its_own_test_and_says_the_pretraining_is_not_measured():
    within = {"diff": 0.1, "p": 0.03, "test": "paired t-test over 4 seeds"}
    only = fake_details(
        {"linear": {"simclr": {"0.1": A[0]}, "raw_pixels": {"0.1": B[0]}}},
        {"linear": {"raw_pixels": {"0.1": within}}},
    )
    test = dataset_summary({0: only}, "transfer")["significance"]["linear"]["raw_pixels"]["0.1"]
    assert test["p"] == 0.03 and test["ci"] is None
    assert test["test"].endswith("one replica: the pretraining's own variation is not measured")

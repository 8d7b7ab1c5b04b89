"""tasks/summary.py: the replicas' outputs read from their files, pooled into summary.json, and
the headline numbers of metrics.json, checked against sums done by hand on fixed numbers (the
statistics of one cell: tests/tasks/test_replicas.py)."""

from __future__ import annotations

import json

import pytest
from helpers import fake_details

from simclr.config import Params, from_dict
from simclr.errors import PipelineError
from simclr.io import write_json
from tasks.paths import DETAILS, HEADLINE_METRICS, METRICS, SUMMARY, evaluate_dir, pretrain_dir
from tasks.summary import GAIN, headlines, metrics_tree, summarize_replicas

# Two replicas, two label subsets each: replica r's accuracies per method at fractions 0.1, 1.0
RUNS = {
    0: {"simclr": ([0.80, 0.70], [0.90]), "random_init": ([0.50, 0.60], [0.65])},
    1: {"simclr": ([0.60, 0.70], [0.80]), "random_init": ([0.55, 0.45], [0.75])},
}
RAW = {0: ([0.70, 0.74], [0.70]), 1: ([0.62, 0.70], [0.90])}  # raw pixels


def details(r: int) -> dict:
    methods = {m: {"0.1": a, "1.0": b} for m, (a, b) in {**RUNS[r], "raw_pixels": RAW[r]}.items()}
    return fake_details({"linear": methods})


@pytest.fixture
def replicas_written(tmp_path, monkeypatch) -> Params:
    """The files the pretrain and evaluate stages of replicas 0 and 1 leave, in tmp_path."""
    monkeypatch.chdir(tmp_path)
    for r, loss in ((0, 4.0), (1, 5.0)):
        write_json(pretrain_dir(r) / METRICS, {"loss": loss, "knn_accuracy": 0.5 + r / 10})
        write_json(evaluate_dir(r) / DETAILS, details(r))
    return from_dict(Params, {"replicas": [0, 1], "transfer": {"datasets": []}})


def test_summary_json_pools_the_replicas_by_hand(replicas_written):
    summary = summarize_replicas(replicas_written)
    assert summary == json.loads(SUMMARY.read_text())
    assert summary["replicas"] == [0, 1]
    assert summary["pretrain"]["loss"]["mean"] == pytest.approx(4.5)
    assert summary["pretrain"]["loss"]["std"] == pytest.approx(0.5**0.5)  # sample std of 4, 5
    cell = summary["datasets"]["digits"]["linear"]["simclr"]["0.1"]
    assert cell["mean"] == pytest.approx((0.8 + 0.7 + 0.6 + 0.7) / 4)
    assert cell["by_replica"] == pytest.approx({"0": 0.75, "1": 0.65})
    assert summary["datasets"]["digits"]["role"] == "pretraining set"


def test_metrics_json_holds_each_headline_mean_and_the_gain_over_the_best_baseline(
    replicas_written,
):
    summarize_replicas(replicas_written)
    metrics = json.loads(HEADLINE_METRICS.read_text())
    assert metrics["pretrain"] == pytest.approx({"loss": 4.5, "knn_accuracy": 0.55})
    digits = metrics["digits"]
    assert digits["linear"] == pytest.approx({"10%": 0.7, "100%": 0.85})
    # The best baseline by its mean over replicas is raw pixels at both fractions (10%: 0.69
    # against random init's 0.525; 100%: 0.80 against 0.70). Replica by replica, SimCLR minus
    # it: 10%: 0.75 - 0.72, 0.65 - 0.66; 100%: 0.9 - 0.7, 0.8 - 0.9.
    assert digits["linear_gain"] == pytest.approx({"10%": (0.03 - 0.01) / 2, "100%": 0.05})
    assert set(digits) == {"linear", "linear_gain"}  # only protocols that ran


def test_the_gain_names_its_baseline_and_keeps_each_replicas_difference():
    pretrain = {0: {"loss": 1.0}, 1: {"loss": 3.0}}  # no knn_accuracy: that headline is left out
    summary = {
        "linear": {
            m: {"1.0": {"mean": sum(v) / 2, "by_replica": {"0": v[0], "1": v[1]}}}
            for m, v in {
                "simclr": (0.9, 0.7),
                "random_init": (0.2, 0.4),
                "raw_pixels": (0.5, 0.3),
            }.items()
        }
    }
    found = headlines(pretrain, {"set": summary})
    assert set(found) == {("pretrain", "loss"), ("set", "linear", "100%"), ("set", GAIN, "100%")}
    gain = found[("set", GAIN, "100%")]
    assert gain["baseline"] == "raw_pixels" and gain["n"] == 2
    assert gain["by_replica"] == pytest.approx({"0": 0.4, "1": 0.4})
    assert gain["mean"] == pytest.approx(0.4) and gain["std"] == pytest.approx(0.0)
    assert found[("pretrain", "loss")]["std"] == pytest.approx(2**0.5)


def test_a_dataset_named_pretrain_is_refused_in_one_line():
    with pytest.raises(PipelineError, match="datasets.pretrain: the name clashes"):
        headlines({0: {"loss": 1.0}}, {"pretrain": {"linear": {}}})


def test_metrics_tree_nests_each_key_and_keeps_the_mean_only():
    found = {
        ("a", "b", "c"): {"mean": 1.5, "std": 9},
        ("a", "d"): {"mean": 2.0},
        ("e",): {"mean": 3},
    }
    assert metrics_tree(found) == {"a": {"b": {"c": 1.5}, "d": 2.0}, "e": 3}

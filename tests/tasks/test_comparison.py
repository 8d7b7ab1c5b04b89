"""tasks/comparison.py and the grouping it reads (tasks/experiments.py): what `simclr compare`
says about two configurations, on hand-made groups and `dvc exp show` output."""

from __future__ import annotations

from tasks.comparison import compare_groups, comparison_markdown, listing_markdown
from tasks.experiments import Group, entries

LOSS, LINEAR = "pretrain.loss", "digits.linear.100%"


def group(name: str, temperature: float, loss: list[float], linear: list[float]) -> Group:
    g = Group([name], [name * 7], "base", {"pretrain.temperature": temperature, "seed": 0})
    g.values = {
        LOSS: {str(r): v for r, v in enumerate(loss)},
        LINEAR: {str(r): v for r, v in enumerate(linear)},
    }
    return g


def test_the_loss_of_two_temperatures_is_neither_tested_nor_bolded():
    a = group("t05", 0.5, [5.1, 5.2], [0.60, 0.61])
    b = group("t01", 0.1, [3.0, 3.1], [0.70, 0.72])
    rows = {r["metric"]: r for r in compare_groups(a, b)}
    assert rows[LOSS]["p"] is None and rows[LOSS]["q"] is None
    assert rows[LOSS]["beyond noise"] == "not comparable"
    assert rows[LOSS]["test"] == "not comparable: pretrain.temperature differ"
    assert rows[LINEAR]["p"] is not None  # the accuracy is compared, alone in the q
    listing = listing_markdown([a, b])
    assert "| pretrain.loss (not comparable: pretrain.temperature differ) | 5.1500" in listing
    assert "**3.0500" not in listing and "**0.7100" in listing
    same = group("t05b", 0.5, [5.0, 5.05], [0.60, 0.62])
    assert {r["metric"]: r for r in compare_groups(a, same)}[LOSS]["p"] is not None


def test_two_replicas_a_side_say_the_test_has_one_degree_of_freedom():
    a = group("a", 0.5, [5.1, 5.2], [0.60, 0.61])
    b = group("b", 0.5, [5.0, 5.1], [0.70, 0.72])
    text = comparison_markdown(a, b, compare_groups(a, b))
    assert "With 2 replicas on a side the test has 1 degree of freedom" in text
    c = group("c", 0.5, [5.0, 5.1, 5.2], [0.70, 0.72, 0.71])
    d = group("d", 0.5, [5.0, 5.1, 5.3], [0.60, 0.62, 0.61])
    assert "degree of freedom" not in comparison_markdown(c, d, compare_groups(c, d))


def _run(name: str, rev: str, lr: float, acc: float) -> dict:
    return {
        "name": name,
        "rev": rev,
        "data": {
            "params": {"params.yaml": {"data": {"pretrain": {"lr": lr}}}},
            "metrics": {"reports/metrics.json": {"data": {"acc": acc}}},
        },
    }


def test_the_workspace_left_by_dvc_exp_run_is_that_experiment_not_a_configuration():
    head = {**_run("main", "a" * 40, 0.1, 0.5), "experiments": []}
    head["experiments"] = [{"revs": [_run("exp-1", "b" * 40, 0.2, 0.6)]}]
    workspace = {**_run("", "workspace", 0.2, 0.6)}
    assert [e.name for e in entries([workspace, head])] == ["main", "exp-1"]
    changed = {**_run("", "workspace", 0.3, 0.7)}  # edited since: a configuration of its own
    assert [e.name for e in entries([changed, head])] == ["workspace", "main", "exp-1"]

"""tasks/report_markdown.py on hand-made inputs: the baselines table decides "beyond noise" as
`simclr compare` does, and says what 2 replicas cannot tell."""

from __future__ import annotations

from types import SimpleNamespace

from tasks.report_markdown import (
    FEW_REPLICAS,
    _transfer_words,
    accuracy_table,
    baselines_section,
    literal,
)

FRACTIONS = {"0.01": 0.04, "0.1": 0.045, "1.0": 0.5}  # label fraction -> p of SimCLR's lead


def _inputs(replicas: tuple[int, ...]) -> SimpleNamespace:
    cell = {"mean": 0.8, "std": 0.01}
    test = {f: {"diff": 0.1, "ci": [0.0, 0.2], "p": p} for f, p in FRACTIONS.items()}
    details = {
        "role": "pretraining set",
        "linear": {"simclr": dict.fromkeys(FRACTIONS, cell), "raw_pixels": dict.fromkeys(
            FRACTIONS, {"mean": 0.7, "std": 0.0})},
        "significance": {"linear": {"raw_pixels": test}},
    }  # fmt: skip
    params = SimpleNamespace(replicas=replicas)
    return SimpleNamespace(params=params, evaluations={"digits": details})


def test_beyond_noise_is_the_benjamini_hochberg_q_over_the_cells_not_the_raw_p():
    # q of p = 0.04, 0.045, 0.5 over 3 cells: 0.0675, 0.0675, 0.5. The raw p alone would
    # have called two cells beyond the noise.
    rows = [line for line in baselines_section(_inputs((0, 1, 2))) if line.startswith("| digits")]
    assert [row.rstrip(" |").rsplit("| ", 1)[1] for row in rows] == [
        "p < 0.05 only",
        "p < 0.05 only",
        "no",
    ]


def test_two_replicas_say_the_test_has_one_degree_of_freedom():
    assert any(FEW_REPLICAS in line for line in baselines_section(_inputs((0, 1))))
    assert not any(FEW_REPLICAS in line for line in baselines_section(_inputs((0, 1, 2))))


def test_no_transfer_sets_is_said_not_left_dangling():
    assert _transfer_words(()) == "no transfer sets (params.yaml `transfer.datasets` is empty)"
    assert _transfer_words(("mnist", "faces")) == "transfer to `mnist`, `faces`"


def test_a_users_value_is_one_code_span_whatever_it_holds():
    assert literal("[click](javascript:x)") == "`[click](javascript:x)`"
    assert literal("a `b` c") == "``a `b` c``"  # a fence longer than any run inside
    assert literal("``x") == "``` ``x ```"  # padded where the value starts with a backtick
    assert literal("line\nbreak\r") == "`line\\nbreak\\r`"  # stays on its line and table row


def test_the_accuracy_table_bolds_each_columns_best_and_gives_each_baseline_its_p():
    by_method = {
        "raw_pixels": {"0.1": {"mean": 0.7, "std": 0.02}, "1.0": {"mean": 0.9, "std": 0.0}},
        "simclr": {"0.1": {"mean": 0.8, "std": 0.01}, "1.0": {"mean": 0.85, "std": 0.03}},
    }
    tests = {"raw_pixels": {"0.1": {"p": 0.00001}, "1.0": {"p": 0.0312}}}
    assert accuracy_table(by_method, tests).splitlines() == [
        "| method | 10% labels | 100% labels |",
        "|---|---|---|",
        "| SimCLR | **0.800 ± 0.010** | 0.850 ± 0.030 |",  # SimCLR first, whatever the order
        "| raw pixels | 0.700 ± 0.020, p<1e-4 | **0.900 ± 0.000**, p=0.031 |",
    ]

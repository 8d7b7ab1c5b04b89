"""tasks/evaluate.py's protocol notes: the fine-tuning budget each fraction got, and the key to
raise where evaluate.finetune.max_steps cut it short (the report prints these notes)."""

from simclr.config import Params
from tasks.evaluate import finetune_words


def _result(bounds: dict[str, tuple[int, float, str]]) -> dict:
    cells = {
        f: {"runs": [{"batch": 64, "steps": steps, "passes": passes, "bound": bound}]}
        for f, (steps, passes, bound) in bounds.items()
    }
    return {"finetune": {"simclr": cells}}


def test_a_max_steps_cut_is_named_with_the_key_to_raise():
    params = Params.model_validate({"evaluate": {"finetune": {"epochs": 20, "max_steps": 100}}})
    words = finetune_words(
        params,
        _result({"0.01": (50, 40.0, "min_steps"), "1.0": (100, 0.64, "max_steps")}),
    )
    assert words.startswith("; 1%: 50 steps of 64 (40 passes), evaluate.finetune.min_steps")
    assert (
        "100%: 100 steps of 64 (0.64 passes), cut from the 20 passes asked by "
        "evaluate.finetune.max_steps = 100: raise it" in words
    )


def test_no_cut_no_advice_and_no_finetuning_no_words():
    params = Params()
    words = finetune_words(params, _result({"1.0": (3125, 20.0, "epochs")}))
    assert words == "; 100%: 3125 steps of 64 (20 passes)"
    assert finetune_words(params, {}) == ""

"""tasks/dotted.py: params as the dotted keys `dvc exp run -S` takes, and which of them differ
from the built-in defaults."""

from __future__ import annotations

from simclr.config import Params, from_dict
from tasks.dotted import changed_params, flatten


def test_flatten_joins_nested_keys_with_dots_and_keeps_leaves_as_they_are():
    tree = {"a": {"b": 1, "c": {"d": [1, 2]}}, "e": None}
    assert flatten(tree) == {"a.b": 1, "a.c.d": [1, 2], "e": None}
    assert flatten({}) == {} and flatten(3, "x") == {"x": 3}


def test_changed_params_are_the_values_off_the_defaults_only():
    assert changed_params(Params()) == {}
    params = from_dict(
        Params, {"seed": 7, "pretrain": {"epochs": 50}, "transfer": {"datasets": []}}
    )
    assert changed_params(params) == {"seed": 7, "pretrain.epochs": 50}  # [] is the default


def test_a_dataset_is_compared_with_the_defaults_of_its_own_source():
    folder = {"source": "imagefolder", "root": "/data/pets"}
    raw = {"datasets": {"pets": folder}, "pretrain": {"dataset": "pets"}, "transfer": {}}
    params = from_dict(Params, raw)
    # Not its resize, channels or test_fraction: those are imagefolder's defaults
    assert changed_params(params) == {
        "datasets.pets.root": "/data/pets",
        "pretrain.dataset": "pets",
    }

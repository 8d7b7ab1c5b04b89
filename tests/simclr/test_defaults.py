"""One source of every default: each params key that a library function takes as a keyword
argument has the same default in the params schema (simclr/config.py) and in the function's
signature, so `simclr_view(x, g)` is what an unset `pretrain.augment` runs, and so on."""

import dataclasses
import inspect

import pytest

from simclr.augment import simclr_view
from simclr.config import (
    AugmentConfig,
    EvaluateConfig,
    FinetuneConfig,
    ModelConfig,
    PretrainConfig,
)
from simclr.evaluate import Protocols, label_subsets
from simclr.finetune import finetune, finetune_optimizer, finetune_steps
from simclr.loss import nt_xent
from simclr.models import ENCODER_KEYS, Encoder, build_model, projection_head
from simclr.optim import build_optimizer, scaled_lr
from simclr.train import Recipe

# params section -> the library callables whose keyword arguments are its keys, and the keys
# compared elsewhere: the pipeline's alone (no library function takes them), or a section of
# their own (pretrain.augment, evaluate.finetune: their rows)
MAPPED = [
    (ModelConfig, [build_model, Encoder, projection_head], set()),
    (AugmentConfig, [simclr_view], set()),
    (
        PretrainConfig,
        [Recipe, build_optimizer, scaled_lr, nt_xent],
        {"dataset", "distributed", "augment"},
    ),
    (FinetuneConfig, [finetune, finetune_steps, finetune_optimizer], {"seeds"}),
    (EvaluateConfig, [Protocols, label_subsets], {"finetune"}),
]


def library_defaults(fn) -> dict:
    """{keyword argument: default} of a function, or of a dataclass's fields."""
    if dataclasses.is_dataclass(fn):
        return {
            f.name: f.default
            for f in dataclasses.fields(fn)
            if f.default is not dataclasses.MISSING
        }
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(
    ("section", "functions", "elsewhere"), MAPPED, ids=lambda v: getattr(v, "__name__", "")
)
def test_every_params_default_is_the_library_default(section, functions, elsewhere):
    schema = {name: f.default for name, f in section.model_fields.items()}
    taken = set()
    for fn in functions:
        for name, default in library_defaults(fn).items():
            if name in schema:
                taken.add(name)
                assert default == schema[name], f"{fn.__name__}({name}=...) vs {section.__name__}"
    assert set(schema) - elsewhere == taken, "a params key no library function takes"


def test_finetune_seeds_and_the_evaluations_fine_tuning_default_as_params():
    assert Protocols().finetune_seeds == FinetuneConfig().seeds
    assert Protocols().finetunes == (FinetuneConfig().epochs > 0)


def test_encoder_keys_are_the_encoders_keyword_arguments():
    encoder = [
        n for n, p in inspect.signature(Encoder).parameters.items() if p.kind is p.KEYWORD_ONLY
    ]
    assert tuple(encoder) == ENCODER_KEYS
    assert set(inspect.signature(build_model).parameters) >= set(ModelConfig.model_fields)

"""params.yaml's sections as the plain arguments of simclr/'s functions: the one place where
the pipeline's pydantic models meet the library. The library's keyword arguments carry the
params keys' names, so each mapping is a dump of a section."""

from __future__ import annotations

from simclr.config import EvaluateConfig, FinetuneConfig, ModelConfig, PretrainConfig
from simclr.evaluate import Protocols
from simclr.train import Recipe


def model_kwargs(model: ModelConfig) -> dict:
    """`build_model`'s (and `Encoder`'s, `projection_head`'s) keyword arguments."""
    return model.model_dump()


def recipe(pretrain: PretrainConfig) -> Recipe:
    """The pretraining loop's settings; `dataset` and `distributed` are the stage's."""
    return Recipe(**pretrain.model_dump(exclude={"dataset", "distributed"}))


def finetune_kwargs(finetune: FinetuneConfig) -> dict:
    """`simclr.finetune.finetune`'s keyword arguments (`seeds` is the evaluation's)."""
    return finetune.model_dump(exclude={"seeds"})


def protocols(evaluate: EvaluateConfig) -> Protocols:
    """The evaluation's settings."""
    return Protocols(
        **evaluate.model_dump(exclude={"finetune"}),
        finetune=finetune_kwargs(evaluate.finetune),
        finetune_seeds=evaluate.finetune.seeds,
    )

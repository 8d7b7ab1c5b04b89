"""params.yaml's sections as the plain keyword arguments of simclr/'s functions: the one place
where the pipeline's pydantic models meet the library. The library's arguments carry the
params keys' names, so each mapping is a dump of a section. Plain dicts, so that importing
this imports no part of the library a stage does not run (its DVC deps stay its own)."""

from __future__ import annotations

from simclr.config import EvaluateConfig, FinetuneConfig, ModelConfig, PretrainConfig


def model_kwargs(model: ModelConfig) -> dict:
    """`build_model`'s (and `pretrain`'s `model`, `save_checkpoint`'s) keyword arguments."""
    return model.model_dump()


def recipe_kwargs(pretrain: PretrainConfig) -> dict:
    """`simclr.train.Recipe`'s fields; `dataset` and `distributed` are the stage's."""
    return pretrain.model_dump(exclude={"dataset", "distributed"})


def finetune_kwargs(finetune: FinetuneConfig) -> dict:
    """`simclr.finetune.finetune`'s keyword arguments (`seeds` is the evaluation's)."""
    return finetune.model_dump(exclude={"seeds"})


def protocols_kwargs(evaluate: EvaluateConfig) -> dict:
    """`simclr.evaluate.Protocols`' fields."""
    return {
        **evaluate.model_dump(exclude={"finetune"}),
        "finetune": finetune_kwargs(evaluate.finetune),
        "finetune_seeds": evaluate.finetune.seeds,
    }

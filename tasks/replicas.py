"""Pretraining-seed replicas (params.yaml `replicas`): the seeds each replica uses.

Replica r pretrains with seed `seed + r` (initial weights, batch order, views). Its random-init
baseline is that same initialisation, untrained, so SimCLR and random init differ by the
pretraining alone. Its label subsets are its own: seeds seed + r*S ... seed + r*S + S - 1 for
S = evaluate.seeds, so subsets are nested in replicas and a test over replicas (each replica's
mean over its subsets) sees the variation of both.
"""

from __future__ import annotations

from simclr.config import Params
from simclr.errors import PipelineError


def replica_arg(params: Params, arg: str | None = None) -> int:
    """The replica a stage was started for (its command-line argument; none = the first)."""
    if arg is None:
        return params.replicas[0]
    if not arg.isdigit() or int(arg) not in params.replicas:
        allowed = ", ".join(str(r) for r in params.replicas)
        raise PipelineError(f"params.yaml: replicas has no {arg!r}; allowed: {allowed}")
    return int(arg)


def pretraining_seed(params: Params, replica: int) -> int:
    return params.seed + replica


def trained_with(params: Params, replica: int) -> Params:
    """The params replica `replica` pretrains with: its own seed, everything else as given."""
    return params.model_copy(update={"seed": pretraining_seed(params, replica)})


def first_label_seed(params: Params, replica: int) -> int:
    """The seed of the replica's first label subset (the others follow it)."""
    return params.seed + replica * params.evaluate.seeds

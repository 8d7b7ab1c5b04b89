"""Checks across params.yaml's keys that the schema cannot make one key at a time: combinations
that would pass every stage up to pretraining and then fail, or mislead, after it. `simclr check`
runs them, and so `simclr run` and `make run` before any stage. (Not a stage: a stage that read
transfer.datasets to check it would have to declare it, and rerun whenever it changes.)"""

from __future__ import annotations

from simclr.config import Params
from simclr.errors import PipelineError
from tasks.sources import source_channels

MIN_REPLICAS = 3  # fewer: the test over replicas has 1 degree of freedom, or none


def check_channels(params: Params) -> None:
    """Every transfer set prepared with the pretraining set's channels: the encoder's first
    convolution takes that many, and transfer@<dataset> would stop after pretraining."""
    name = params.pretrain.dataset
    ours = source_channels(params.datasets[name], params.data)
    for other in params.transfer.datasets:
        theirs = source_channels(params.datasets[other], params.data)
        if None not in (ours, theirs) and ours != theirs:
            raise PipelineError(
                f"params.yaml: transfer.datasets has {other!r}, prepared with {theirs} "
                f"channel(s), but the pretraining set {name!r} has {ours}: the encoder takes "
                f"{ours}; set datasets.{other}.channels: {ours}, or remove {other!r} from "
                "transfer.datasets"
            )


def replica_warnings(params: Params) -> list[str]:
    """What the number of replicas costs the statistics, where it costs anything."""
    n = len(params.replicas)
    if n >= MIN_REPLICAS:
        return []
    what = (
        "the test over replicas has 1 degree of freedom: wide intervals, little power"
        if n == 2
        else "no test over replicas: p covers the label subsets, not the pretraining"
    )
    return [
        f"params.yaml: replicas has {n}: {what}; {MIN_REPLICAS} or more make the comparison "
        "with the baselines informative"
    ]


def check_params(params: Params) -> list[str]:
    """Refuse (PipelineError) a combination that would fail after pretraining; the warnings of
    one that would only mislead."""
    check_channels(params)
    return replica_warnings(params)

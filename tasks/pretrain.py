"""Pretrain SimCLR on the prepared pretraining set; per-epoch metrics through DVCLive."""

from __future__ import annotations

import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.checkpoint import save_checkpoint
from simclr.config import Params, to_dict
from simclr.data.prepared import load_prepared
from simclr.provenance import provenance
from simclr.train import pretrain
from tasks.paths import CHECKPOINT, REPORTS, prepared_root

LIVE_DIR = REPORTS / "pretrain"


@task(name="pretrain-simclr", cache_policy=NONE)
def pretrain_simclr(params: Params) -> Path:
    from dvclive import Live

    log = get_run_logger()
    data = load_prepared(prepared_root(params.pretrain.dataset))
    # Labels are unused: SimCLR pretrains on the training images alone.
    images = data.train.images
    start = time.perf_counter()
    # dvcyaml=None: the pipeline's dvc.yaml is the one definition of metrics and plots.
    with Live(str(LIVE_DIR), dvcyaml=None, save_dvc_exp=False, report=None) as live:

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                live.log_metric(key, value)
            live.next_step()

        result = pretrain(images, params.model, params.pretrain, params.seed, on_epoch)
        seconds = time.perf_counter() - start
        live.summary["wall_seconds"] = seconds
    extra = {
        "pretrain": to_dict(params.pretrain),
        "seed": params.seed,
        "dataset": params.pretrain.dataset,
        "history": result.history,
        "wall_seconds": seconds,
        "provenance": provenance(str(result.device)),
    }
    save_checkpoint(CHECKPOINT, result.encoder, result.head, params.model, extra)
    log.info("pretrained in %.1f s -> %s", seconds, CHECKPOINT)
    return CHECKPOINT

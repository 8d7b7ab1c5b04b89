"""Prepare one embedded dataset into the prepared format."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.data.embedded import load_source
from simclr.data.prepared import save_prepared, split_source
from tasks.paths import prepared_root


@task(name="prepare-dataset", cache_policy=NONE)
def prepare_dataset(name: str, params: Params) -> str:
    log = get_run_logger()
    cfg = params.datasets[name]
    source = load_source(cfg.source, params.seed)
    prepared = split_source(
        source,
        params.data.image_size,
        params.data.test_fraction,
        params.seed,
        params.data.max_per_class,
    )
    root = save_prepared(prepared, prepared_root(name))
    log.info(
        "%s: %d train + %d test images of %s, %d classes -> %s",
        name,
        len(prepared.train.labels),
        len(prepared.test.labels),
        prepared.train.images.shape[1:],
        len(prepared.class_names),
        root,
    )
    return str(root)

"""Prepare one dataset (any source in params.yaml) into the prepared format."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.data.load import load_dataset
from simclr.data.prepared import save_prepared, skip_rejected, split_source
from tasks.artifacts import artifact_key, publish
from tasks.paths import prepared_root
from tasks.retries import TRANSIENT


@task(name="prepare-dataset", cache_policy=NONE, **TRANSIENT)
def prepare_dataset(name: str, params: Params) -> str:
    log = get_run_logger()
    cfg = params.datasets[name]
    opts = cfg.options(params.data)
    start = time.perf_counter()
    source = load_dataset(cfg, opts, params.seed)
    seconds = time.perf_counter() - start
    files = len(source.labels) + len(source.rejected)
    log.info(
        "%s: read %d images from %s in %.1f s (%.0f images/s)",
        name,
        files,
        cfg.source,
        seconds,
        files / max(seconds, 1e-9),
    )
    prepared = split_source(
        source, opts.test_fraction, params.seed, opts.fraction, opts.max_per_class
    )
    for r in prepared.rejected:
        log.warning("%s: cannot decode %s (%s)", name, r.path, r.reason)
    if prepared.rejected and opts.skip_corrupt:
        prepared = skip_rejected(prepared)
        log.warning(
            "%s: skip_corrupt: dropped %d undecodable files (listed in skipped.json)",
            name,
            len(prepared.skipped),
        )
    root = save_prepared(prepared, prepared_root(name))
    sizes = ", ".join(f"{len(s.labels)} {k}" for k, s in prepared.splits().items())
    log.info(
        "%s: %s images of %s, %d classes -> %s",
        name,
        sizes,
        prepared.train.images.shape[1:],
        len(prepared.class_names),
        root,
    )
    splits = prepared.splits()
    rows = [
        {"class": c, **{k: int((s.labels == i).sum()) for k, s in splits.items()}}
        for i, c in enumerate(prepared.class_names)
    ]
    summary = f"{name}: {sizes} images, {len(prepared.class_names)} classes"
    markdown = "\n".join(
        [
            f"# Prepared `{name}`",
            "",
            f"- source: `{cfg.source}`; read {files} files in {seconds:.1f} s",
            f"- images: {sizes}; shape {tuple(prepared.train.images.shape[1:])} (H, W, C)",
            f"- classes: {len(prepared.class_names)}; undecodable files: "
            f"{len(prepared.rejected) + len(prepared.skipped)}",
            f"- written to `{root}`",
        ]
    )
    publish(artifact_key("prepare", name), summary, markdown, rows)
    return str(root)

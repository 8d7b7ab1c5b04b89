"""Prepare one dataset (any source in params.yaml) into the prepared format."""

from __future__ import annotations

import time

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.data.prepared import prepare
from tasks.artifacts import artifact_key, publish
from tasks.paths import prepared_root
from tasks.retries import TRANSIENT
from tasks.sources import load_dataset


@task(name="prepare-dataset", cache_policy=NONE, **TRANSIENT)
def prepare_dataset(name: str, params: Params) -> str:
    log = get_run_logger()
    cfg = params.datasets[name]
    opts = cfg.options(params.data)
    read = {}

    def load(scratch):  # timed: the read is what the log and the artifact report
        start = time.perf_counter()
        source = load_dataset(cfg, opts, params.seed, scratch)
        read["seconds"] = time.perf_counter() - start
        read["files"] = len(source.labels) + len(source.rejected)
        log.info(
            "%s: read %d images from %s in %.1f s (%.0f images/s)",
            name,
            read["files"],
            cfg.source,
            read["seconds"],
            read["files"] / max(read["seconds"], 1e-9),
        )
        return source

    root = prepared_root(name)
    prepared = prepare(
        root,
        load,
        opts.test_fraction,
        params.seed,
        opts.fraction,
        opts.max_per_class,
        opts.skip_corrupt,
    )
    files, seconds = read["files"], read["seconds"]
    for r in prepared.rejected + prepared.skipped:
        log.warning("%s: cannot decode %s (%s)", name, r.path, r.reason)
    if prepared.skipped:
        log.warning(
            "%s: skip_corrupt: dropped %d undecodable files (listed in skipped.json)",
            name,
            len(prepared.skipped),
        )
    sizes = ", ".join(f"{len(s.labels)} {k}" for k, s in prepared.splits().items())
    log.info(
        "%s: %s images of %s, %d classes -> %s",
        name,
        sizes,
        prepared.train.images.shape[1:],
        len(prepared.class_names),
        root,
    )
    _publish(name, cfg.source, prepared, sizes, files, seconds, root)
    return str(root)


def _publish(name, source, prepared, sizes: str, files: int, seconds: float, root) -> None:
    """The prepare-<dataset> artifact: images per class and split, and a summary."""
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
            f"- source: `{source}`; read {files} files in {seconds:.1f} s",
            f"- images: {sizes}; shape {tuple(prepared.train.images.shape[1:])} (H, W, C)",
            f"- classes: {len(prepared.class_names)}; undecodable files: "
            f"{len(prepared.rejected) + len(prepared.skipped)}",
            f"- written to `{root}`",
        ]
    )
    publish(artifact_key("prepare", name), summary, markdown, rows)

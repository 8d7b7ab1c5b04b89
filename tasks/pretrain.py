"""Pretrain SimCLR on the prepared pretraining set; per-epoch metrics through DVCLive.

The checkpoint holds only what training computed (weights, configs, params, per-epoch loss, lr
and kNN accuracy), so that the same code, params and data give the same file byte for byte and
DVC sees an unchanged checkpoint as unchanged; how the run went (timings, the epoch it resumed
after, device, git commit, package versions) goes beside it, to run.json. Each pretraining-seed
replica is a stage of its own (pretrain@<r>), with its own seed, checkpoint and reports."""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

import simclr
from simclr.checkpoint import save_checkpoint
from simclr.config import Params, to_dict
from simclr.data.prepared import Prepared, load_prepared
from simclr.io import write_json
from simclr.provenance import provenance
from simclr.train import TIMINGS, Labelled, Pretrained, Recipe, pretrain
from tasks.arguments import model_kwargs, recipe_kwargs
from tasks.artifacts import artifact_key, progress_artifact, publish
from tasks.figures.views import view_pairs_figure
from tasks.launch import pretrain_distributed
from tasks.paths import CURVES_DIR, RESUME, RUN, VIEWS, checkpoint, prepared_root, pretrain_dir
from tasks.replicas import trained_with
from tasks.retries import TRANSIENT


def resume_key(params: Params) -> str:
    """A hash of everything the pretrain stage's result depends on: its params, the prepared
    data (the manifest holds every image's sha256) and the method's code. A resumable state is
    only picked up by a run with the same inputs."""
    h = hashlib.sha256()
    used = {
        "seed": params.seed,
        "model": to_dict(params.model),
        "pretrain": to_dict(params.pretrain),
    }
    for where in ("master_addr", "master_port"):  # a new port after a kill keeps the state
        used["pretrain"]["distributed"].pop(where)
    h.update(json.dumps(used, sort_keys=True).encode())
    h.update((prepared_root(params.pretrain.dataset) / "manifest.parquet").read_bytes())
    package = Path(simclr.__file__).parent
    for source in sorted(package.rglob("*.py")):
        h.update(source.relative_to(package).as_posix().encode() + source.read_bytes())
    return h.hexdigest()[:16]


@task(name="pretrain-simclr", cache_policy=NONE, **TRANSIENT)
def pretrain_simclr(params: Params, replica: int) -> Path:
    """Pretrain replica `replica` (with its own seed): its checkpoint, curves and run.json."""
    log = get_run_logger()
    params = trained_with(params, replica)
    out = pretrain_dir(replica)
    data = load_prepared(prepared_root(params.pretrain.dataset))
    augment = params.pretrain.augment.model_dump()
    view_pairs_figure(data.pretraining.images, augment, params.seed, out / VIEWS)
    resume = RESUME / f"pretrain-{resume_key(params)}.pt"
    result, seconds = _train(params, data, resume, out, log)
    _save(params, replica, data, result, seconds)
    resume.unlink(missing_ok=True)  # the finished checkpoint is DVC's now
    log.info("pretrained replica %d in %.1f s -> %s", replica, seconds, checkpoint(replica))
    _publish(params, replica, data, result, seconds)
    return checkpoint(replica)


def _train(
    params: Params, data: Prepared, resume: Path, out: Path, log
) -> tuple[Pretrained, float]:
    """Pretrain, in this process or under torchrun, each epoch logged to DVCLive in `out`; the
    result and its wall time."""
    from dvclive import Live

    # Labels are used only by the kNN monitor; SimCLR itself sees the training images alone.
    monitor = Labelled(data.train.images, data.train.labels, data.test.images, data.test.labels)
    epochs = params.pretrain.epochs
    progress = progress_artifact(
        artifact_key("pretrain", "progress"),
        f"pretraining on {params.pretrain.dataset}: {epochs} epochs",
    )
    start = time.perf_counter()
    # dvcyaml=None: the pipeline's dvc.yaml is the one definition of metrics and plots. A resumed
    # run replays the restored epochs through on_epoch, so the log starts clean either way.
    with Live(str(out), dvcyaml=None, save_dvc_exp=False, report=None) as live:

        def on_epoch(epoch: int, metrics: dict[str, float]) -> None:
            for key, value in metrics.items():
                live.log_metric(key, value)
            live.next_step()
            progress(
                100 * (epoch + 1) / epochs,
                f"epoch {epoch + 1}/{epochs}: loss {metrics['loss']:.4f}",
            )

        if params.pretrain.distributed.world_size > 1:  # torchrun; only rank 0 writes
            root, shape = prepared_root(params.pretrain.dataset), data.pretraining.images.shape
            result = pretrain_distributed(params, root, shape, resume, log.info, on_epoch)
        else:
            result = pretrain(
                data.pretraining.images,
                model_kwargs(params.model),
                Recipe(**recipe_kwargs(params.pretrain)),
                params.seed,
                on_epoch,
                monitor=monitor,
                resume_path=resume,
            )
        seconds = time.perf_counter() - start
        live.summary["wall_seconds"] = seconds
    return result, seconds


def _save(params: Params, replica: int, data: Prepared, result: Pretrained, seconds: float):
    """The checkpoint (what training computed), then run.json (how the run went)."""
    # Interned keys: pickle writes a string once per object, and keys restored from a resumable
    # state are other objects than a fresh run's, which would change the file's bytes.
    computed = [
        {sys.intern(k): v for k, v in m.items() if k not in TIMINGS} for m in result.history
    ]
    extra = {
        "pretrain": to_dict(params.pretrain),
        "seed": params.seed,
        "dataset": params.pretrain.dataset,
        "history": computed,
        "precision": result.precision,
    }
    image_size = data.train.images.shape[1]
    save_checkpoint(
        checkpoint(replica),
        result.encoder,
        result.head,
        model_kwargs(params.model),
        image_size,
        extra,
    )
    run = {
        "replica": replica,
        "wall_seconds": seconds,
        "resumed_from_epoch": result.resumed_from,
        "epochs": [{k: m[k] for k in TIMINGS} for m in result.history],
        "provenance": provenance(str(result.device)),
    }
    write_json(pretrain_dir(replica) / RUN, run)


def _publish(params: Params, replica: int, data: Prepared, result: Pretrained, seconds: float):
    """The run as a Prefect artifact: a one-line summary, a Markdown note, one row an epoch."""
    last = result.history[-1]
    summary = (
        f"{params.pretrain.dataset}, replica {replica} (seed {params.seed}): "
        f"{len(result.history)} epochs in {seconds:.1f} s, "
        f"final loss {last['loss']:.4f}"
    )
    markdown = "\n".join(
        [
            f"# Pretraining on `{params.pretrain.dataset}`, replica {replica}",
            "",
            f"- {len(data.pretraining.images)} images, {len(result.history)} epochs "
            f"(resumed after {result.resumed_from}), batch {params.pretrain.batch_size}, "
            f"{params.pretrain.optimizer} lr {params.pretrain.lr}, "
            f"temperature {params.pretrain.temperature}",
            f"- device {result.device}, precision {result.precision}, wall time {seconds:.1f} s",
            f"- final loss {last['loss']:.4f}"
            + (f", kNN accuracy {last['knn_accuracy']:.4f}" if "knn_accuracy" in last else ""),
            f"- seed {params.seed}; checkpoint `{checkpoint(replica)}`, timings and provenance "
            f"in `{pretrain_dir(replica) / RUN}`; curves in `{pretrain_dir(replica) / CURVES_DIR}`",
        ]
    )
    rows = [{"epoch": i + 1, **m} for i, m in enumerate(result.history)]
    publish(artifact_key("pretrain", str(replica)), summary, markdown, rows)

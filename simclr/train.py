"""The SimCLR pretraining loop: batched views on the device, mixed precision, kNN monitor, and
a resumable state saved every epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from simclr.augment import simclr_view
from simclr.checkpoint import load_state, save_state, unseal
from simclr.config import ModelConfig, PretrainConfig
from simclr.data.prepared import read_rows
from simclr.device import (
    autocast_dtype,
    explain_oom,
    release_free_heap,
    seed_everything,
    select_device,
    to_images,
)
from simclr.distributed import data_parallel, rank_device, world
from simclr.errors import PipelineError
from simclr.features import extract_features
from simclr.loss import nt_xent
from simclr.models import Encoder, build_model
from simclr.optim import build_optimizer, warmup_cosine
from simclr.probe import knn_accuracy

log = logging.getLogger("simclr.train")
TRIM_EVERY = 20  # steps between handing freed heap memory back to the OS (CPU training)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass
class Pretrained:
    encoder: Encoder
    head: nn.Module
    history: list[dict[str, float]]
    device: torch.device
    resumed_from: int  # epochs restored from the resumable state; 0 = started fresh
    precision: str  # what pretrain.precision resolved to: fp32, bf16 or fp16


@dataclass(frozen=True)
class Labelled:
    """Labelled images for the kNN monitor: the training split is the memory bank."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray


class _Batches(torch.utils.data.Dataset):
    """Whole batches of uint8 NHWC images by index list, so that a DataLoader's workers read
    a memory-mapped array in parallel and pin the batch for the copy to the GPU."""

    def __init__(self, images: np.ndarray, batches: list[np.ndarray]):
        self.images, self.batches = images, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(read_rows(self.images, self.batches[i]))


def _loader(images: np.ndarray, batches: list[np.ndarray], cfg: PretrainConfig, device):
    return torch.utils.data.DataLoader(
        _Batches(images, batches),
        batch_size=None,
        shuffle=False,  # the order comes from our seeded generator
        num_workers=cfg.loader_workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if cfg.loader_workers else None,
    )


# What a resumable state holds; `seal` adds a sha256 of it all, checked when it is read.
RESUME_KEYS = frozenset(
    [
        "encoder",
        "head",
        "optimizer",
        "schedule",
        "scaler",
        "order_gen",
        "view_gen",
        "torch_rng",
        "history",
    ]
)


def _load_resume(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return unseal(load_state(path), path, RESUME_KEYS)
    except PipelineError as e:  # written atomically, so only foreign damage lands here
        log.warning("unreadable resumable state (%s); starting from epoch 1", e)
        return None


def pretrain(
    images: np.ndarray,
    model_cfg: ModelConfig,
    cfg: PretrainConfig,
    seed: int,
    on_epoch: EpochCallback | None = None,
    monitor: Labelled | None = None,
    resume_path: str | Path | None = None,
) -> Pretrained:
    """Pretrain encoder + head on unlabelled uint8 NHWC `images` with NT-Xent.

    Two views per image are made in batches on the training device; both go through the network
    together, so BN statistics cover the 2N views. The learning rate warms up linearly and
    decays by a cosine, stepped every iteration. With `resume_path`, the whole training state is
    saved there atomically after every epoch, and a run that finds it continues from it: on CPU
    the result is bitwise that of an uninterrupted run. `on_epoch(epoch, metrics)` is called once
    per epoch, restored epochs included, so a logger sees the full history.

    Under torch.distributed (torchrun), each process trains on its share of every global batch
    of `pretrain.batch_size`; only rank 0 reports, logs and saves the resumable state.
    """
    lower = f"pretrain.batch_size (now {cfg.batch_size}), model size or pretrain.precision"
    with explain_oom("pretraining", lower):
        return _pretrain(images, model_cfg, cfg, seed, on_epoch, monitor, resume_path)


def _pretrain(images, model_cfg, cfg, seed, on_epoch, monitor, resume_path) -> Pretrained:
    rank, size = world()
    device = rank_device(select_device(cfg.device))
    seed_everything(seed, device, cfg.threads)  # every process builds the same initial weights
    amp_dtype = autocast_dtype(cfg.precision, device)
    precision = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[amp_dtype]
    n, image_size = len(images), images.shape[1]
    if n < 2:
        raise PipelineError(f"pretraining needs at least 2 images, got {n}; check data params")
    batch = min(cfg.batch_size, n) // size * size  # global; each process takes batch / size
    if batch < size:
        raise PipelineError(f"{n} images cannot feed {size} processes; check data params")
    local = batch // size
    steps_per_epoch = n // batch  # drop the last partial batch: NT-Xent wants full batches
    total_steps = steps_per_epoch * cfg.epochs
    warmup_steps = steps_per_epoch * cfg.warmup_epochs
    memory_format = torch.channels_last if cfg.channels_last else torch.contiguous_format

    encoder, head = build_model(model_cfg, images.shape[-1], image_size)
    encoder = encoder.to(device, memory_format=memory_format)
    head = head.to(device)
    # One network module for the step: DDP (and synchronised BN) across processes.
    net = data_parallel(encoder, head, device) if size > 1 else nn.Sequential(encoder, head)
    optimizer = build_optimizer([encoder, head], cfg, batch)  # lr scaled by the global batch
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    order_gen = torch.Generator().manual_seed(seed)
    view_gen = torch.Generator(device=device).manual_seed(seed + 1)
    history: list[dict[str, float]] = []

    resume_path = Path(resume_path) if resume_path is not None else None
    state = _load_resume(resume_path) if rank == 0 else None
    if size > 1:  # rank 0 reads the state (a file on its machine) and hands it to the others
        box = [state]
        torch.distributed.broadcast_object_list(box, src=0)
        state = box[0]
    if state is not None:
        encoder.load_state_dict(state["encoder"])
        head.load_state_dict(state["head"])
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        scaler.load_state_dict(state["scaler"])
        order_gen.set_state(state["order_gen"])
        view_gen.set_state(state["view_gen"].to(view_gen.get_state().device))
        torch.set_rng_state(state["torch_rng"])
        history = list(state["history"])
        log.info("resuming from %s after epoch %d", resume_path, len(history))
        if on_epoch is not None and rank == 0:
            for epoch, metrics in enumerate(history):
                on_epoch(epoch, metrics)
    resumed_from = len(history)

    # A compiled wrapper shares parameters with the originals; state dicts come from those.
    step_net = torch.compile(net) if cfg.compile else net
    sampler = _sampler(n, rank, size, seed) if size > 1 else None
    autocast = (
        torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext()
    )
    log.info(
        "pretraining on %d images, %d epochs x %d steps of %d (%d processes x %d), device %s, "
        "precision %s",
        n,
        cfg.epochs,
        steps_per_epoch,
        batch,
        size,
        local,
        device,
        precision,
    )
    for epoch in range(resumed_from, cfg.epochs):
        encoder.train()
        head.train()
        start = time.perf_counter()
        if sampler is None:
            perm = torch.randperm(n, generator=order_gen).numpy()
        else:  # this process's share of a seeded global shuffle, and its own augmentations
            sampler.set_epoch(epoch)
            perm = np.fromiter(iter(sampler), dtype=np.int64)
            view_gen.manual_seed(_rank_seed(seed, rank, epoch))
        batches = [perm[i * local : (i + 1) * local] for i in range(steps_per_epoch)]
        losses = []
        lr = optimizer.param_groups[0]["lr"]
        for step, x_u8 in enumerate(_loader(images, batches, cfg, device)):
            if device.type == "cpu" and step % TRIM_EVERY == 0:
                release_free_heap()
            x = to_images(x_u8, device)
            views = torch.cat([simclr_view(x, cfg.augment, view_gen) for _ in range(2)])
            views = views.contiguous(memory_format=memory_format)
            with autocast:
                z = step_net(views)
            loss = nt_xent(z[:local], z[local:], cfg.temperature)  # float32 inside
            lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            schedule.step()
            losses.append(loss.detach())
        # One device sync per epoch, not per step; a divergence is caught before the state is
        # saved, so the last good resumable state stays the one on disk.
        losses_t = torch.stack(losses).float()
        if size > 1:  # the global batch's loss, and the same divergence verdict on every rank
            torch.distributed.all_reduce(losses_t)
            losses_t /= size
        losses_t = losses_t.cpu()
        bad = torch.nonzero(~torch.isfinite(losses_t)).view(-1)
        if len(bad):
            raise PipelineError(
                f"pretraining diverged: non-finite loss at epoch {epoch + 1}, step "
                f"{int(bad[0]) + 1}; lower pretrain.lr or raise pretrain.warmup_epochs"
                + (f" (the state after epoch {epoch} is kept in {resume_path})" if epoch else "")
            )
        seconds = time.perf_counter() - start
        metrics = {
            "loss": float(losses_t.mean()),
            "lr": lr,
            "images_per_s": steps_per_epoch * batch / seconds,  # source images, 2 views each
            "epoch_seconds": seconds,
        }
        last = epoch + 1 == cfg.epochs
        knn_due = cfg.knn_every and ((epoch + 1) % cfg.knn_every == 0 or last)
        if monitor is not None and knn_due and rank == 0:
            metrics["knn_accuracy"] = _knn_monitor(encoder, monitor, cfg, device)
        history.append(metrics)
        if rank > 0:  # only rank 0 saves, logs and reports
            continue
        if resume_path is not None:
            _save_resume(
                resume_path,
                (encoder, head, optimizer, schedule, scaler),
                order_gen,
                view_gen,
                history,
            )
        log.info(
            "epoch %d/%d loss %.4f lr %.4f %.0f images/s%s",
            epoch + 1,
            cfg.epochs,
            metrics["loss"],
            metrics["lr"],
            metrics["images_per_s"],
            f" knn {metrics['knn_accuracy']:.4f}" if "knn_accuracy" in metrics else "",
        )
        if on_epoch is not None:
            on_epoch(epoch, metrics)
    return Pretrained(encoder, head, history, device, resumed_from, precision)


def _sampler(n: int, rank: int, size: int, seed: int):
    """This process's share of each epoch's seeded shuffle of `n` images (the same shuffle on
    every process, so the shares are disjoint)."""
    # The sampler shuffles with seed + epoch: a stride keeps seed s + 1 from replaying seed s.
    return torch.utils.data.DistributedSampler(
        range(n), num_replicas=size, rank=rank, shuffle=True, seed=seed * 1_000_003, drop_last=True
    )


def _rank_seed(seed: int, rank: int, epoch: int) -> int:
    """The view generator's seed for one process and epoch: distinct across ranks, and a
    resumed run needs no per-rank generator state."""
    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def _knn_monitor(encoder: Encoder, data: Labelled, cfg: PretrainConfig, device) -> float:
    train_x = extract_features(encoder, data.train_images, device)
    test_x = extract_features(encoder, data.test_images, device)
    encoder.train()  # extract_features switched it to eval
    return knn_accuracy(
        train_x, data.train_labels, test_x, data.test_labels, cfg.knn_k, cfg.knn_temperature
    )


def _save_resume(path: Path, stateful: tuple, order_gen, view_gen, history: list) -> None:
    encoder, head, optimizer, schedule, scaler = stateful
    state = {
        "encoder": encoder.state_dict(),
        "head": head.state_dict(),
        "optimizer": optimizer.state_dict(),
        "schedule": schedule.state_dict(),
        "scaler": scaler.state_dict(),
        "order_gen": order_gen.get_state(),
        "view_gen": view_gen.get_state(),
        "torch_rng": torch.get_rng_state(),
        "history": history,
    }
    save_state(state, path)

"""The SimCLR pretraining loop: batched views on the device, mixed precision, kNN monitor, and
a resumable state saved every epoch."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from simclr import defaults as D
from simclr.augment import simclr_view
from simclr.checkpoint import load_state, save_state, unseal
from simclr.data.prepared import read_rows
from simclr.device import (
    autocast_dtype,
    explain_oom,
    release_free_heap,
    reuse_freed_memory,
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
from simclr.progress import track

log = logging.getLogger("simclr.train")
TRIM_EVERY = 20  # steps between handing freed heap memory back to the OS (CPU training)

EpochCallback = Callable[[int, dict[str, float]], None]


@dataclass(frozen=True)
class Recipe:
    """The pretraining loop's settings as plain values, params.yaml's `pretrain` keys of the
    same names; `augment` holds `simclr_view`'s keyword arguments. The defaults are the paper's
    recipe (simclr/defaults.py)."""

    epochs: int = D.EPOCHS
    batch_size: int = D.BATCH_SIZE  # global, across processes
    optimizer: str = D.OPTIMIZER
    lr: float = D.LR
    lr_scaling: str = D.LR_SCALING
    momentum: float = D.MOMENTUM
    weight_decay: float = D.WEIGHT_DECAY
    trust_coefficient: float = D.TRUST_COEFFICIENT
    warmup_epochs: int = D.WARMUP_EPOCHS
    temperature: float = D.TEMPERATURE
    device: str = D.DEVICE
    precision: str = D.PRECISION
    channels_last: bool = D.CHANNELS_LAST
    batchnorm: str = D.BATCHNORM  # "joint" (the paper) or "per_view"
    compile: bool = D.COMPILE
    threads: int | None = D.THREADS
    loader_workers: int = D.LOADER_WORKERS
    knn_every: int = D.KNN_EVERY
    knn_k: int = D.KNN_K
    knn_temperature: float = D.KNN_TEMPERATURE
    augment: Mapping[str, object] = field(default_factory=dict)

    def optimizer_kwargs(self) -> dict:
        """`build_optimizer`'s keyword arguments."""
        names = ("optimizer", "lr", "lr_scaling", "momentum", "weight_decay", "trust_coefficient")
        return {name: getattr(self, name) for name in names}


class PerView(nn.Module):
    """`net` run on each half of the batch on its own: with the two views stacked, BatchNorm
    normalises each view by its own N images (lightly's example), not by all 2N (the paper's
    and the official code's). The outputs are the same rows in the same order."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, views: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.net(v) for v in views.chunk(2)])


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


def _loader(images: np.ndarray, batches: list[np.ndarray], cfg: Recipe, device):
    return torch.utils.data.DataLoader(
        _Batches(images, batches),
        batch_size=None,
        shuffle=False,  # the order comes from our seeded generator
        num_workers=cfg.loader_workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if cfg.loader_workers else None,
    )


# Per-epoch metrics that are measured, not computed: they differ from run to run.
TIMINGS = ("images_per_s", "epoch_seconds")
PRECISIONS = {None: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}  # by autocast dtype


@dataclass
class TrainState:
    """Everything that changes during pretraining and that a resumed run restores, so that it
    continues bitwise where the saved run stopped."""

    encoder: Encoder
    head: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    order_gen: torch.Generator  # the epochs' shuffles
    view_gen: torch.Generator  # the augmentations, on the training device
    history: list[dict[str, float]] = field(default_factory=list)

    def state_dict(self) -> dict:
        return {key: read(self) for key, (read, _) in RESUMABLE.items()}

    def load_state_dict(self, state: dict) -> None:
        for key, (_, restore) in RESUMABLE.items():
            restore(self, state[key])


# How one part of a TrainState is read for saving, and restored from what was saved
_Part = tuple[Callable[[TrainState], object], Callable[[TrainState, object], None]]


def _torch_state(name: str) -> _Part:
    """A part with torch's state_dict protocol (modules, optimizer, schedule, grad scaler)."""
    return (
        lambda s: getattr(s, name).state_dict(),
        lambda s, value: getattr(s, name).load_state_dict(value),
    )


def _generator_state(name: str) -> _Part:
    def restore(s: TrainState, value: torch.Tensor) -> None:
        gen = getattr(s, name)
        gen.set_state(value.to(gen.get_state().device))

    return lambda s: getattr(s, name).get_state(), restore


# The resumable state's keys, each with its part of a TrainState; `seal` adds a sha256 of it
# all, checked when it is read.
RESUMABLE: dict[str, _Part] = {
    **{name: _torch_state(name) for name in ("encoder", "head", "optimizer", "schedule", "scaler")},
    **{name: _generator_state(name) for name in ("order_gen", "view_gen")},
    "torch_rng": (lambda s: torch.get_rng_state(), lambda s, value: torch.set_rng_state(value)),
    "history": (lambda s: s.history, lambda s, value: setattr(s, "history", list(value))),
}
RESUME_KEYS = frozenset(RESUMABLE)


def pretrain(
    images: np.ndarray,
    model: Mapping[str, object],
    cfg: Recipe,
    seed: int,
    on_epoch: EpochCallback | None = None,
    monitor: Labelled | None = None,
    resume_path: str | Path | None = None,
) -> Pretrained:
    """Pretrain encoder + head (`build_model`'s keyword arguments `model`) on unlabelled uint8
    NHWC `images` with NT-Xent, as `cfg` says.

    Two views per image are made in batches on the training device; both go through the network
    together, so BN statistics cover the 2N views. The learning rate warms up linearly and
    decays by a cosine, stepped every iteration. With `resume_path`, the whole training state is
    saved there atomically after every epoch, and a run that finds it continues from it: on CPU
    the result is bitwise that of an uninterrupted run. `on_epoch(epoch, metrics)` is called once
    per epoch, restored epochs included, so a logger sees the full history.

    Under torch.distributed (torchrun), each process trains on its share of every global batch
    of `cfg.batch_size`; only rank 0 reports, logs and saves the resumable state.
    """
    with explain_oom("pretraining", cfg.batch_size):
        return _pretrain(images, model, cfg, seed, on_epoch, monitor, resume_path)


def _pretrain(images, model, cfg, seed, on_epoch, monitor, resume_path) -> Pretrained:
    rank, size = world()
    device = rank_device(select_device(cfg.device))
    seed_everything(seed, device, cfg.threads)  # every process builds the same initial weights
    amp_dtype = autocast_dtype(cfg.precision, device)
    if device.type == "cpu":
        reuse_freed_memory()
    plan = _plan(len(images), cfg.batch_size, size)
    state, net = _initial_state(images.shape, model, cfg, seed, device, amp_dtype, plan)
    resume_path = Path(resume_path) if resume_path is not None else None
    _resume(state, resume_path, rank, size, on_epoch)
    resumed_from = len(state.history)
    run = _Run(
        images,
        cfg,
        seed,
        device,
        rank,
        plan,
        # A compiled wrapper shares parameters with the originals; state dicts come from those.
        torch.compile(net) if cfg.compile else net,
        torch.autocast(device.type, dtype=amp_dtype) if amp_dtype is not None else nullcontext(),
        _sampler(plan.n, rank, size, seed) if size > 1 else None,
        resume_path,
    )
    precision = PRECISIONS[amp_dtype]
    log.info(
        "pretraining on %d images, %d epochs x %d steps of %d (%d processes x %d), device %s, "
        "precision %s",
        *(plan.n, cfg.epochs, plan.steps_per_epoch, plan.batch, size, plan.local),
        *(device, precision),
    )
    for epoch in range(resumed_from, cfg.epochs):
        metrics = _epoch(run, state, epoch)
        if monitor is not None and _knn_due(cfg, epoch) and rank == 0:
            metrics["knn_accuracy"] = _knn_monitor(state.encoder, monitor, cfg, device)
        state.history.append(metrics)
        if rank == 0:  # only rank 0 saves, logs and reports
            _close_epoch(run, state, epoch, metrics, on_epoch)
    return Pretrained(state.encoder, state.head, state.history, device, resumed_from, precision)


@dataclass(frozen=True)
class _Plan:
    """How the images become steps: a global batch, each process's share, steps per epoch."""

    n: int  # images
    size: int  # processes
    batch: int  # global batch
    local: int  # each process's share of it
    steps_per_epoch: int


def _plan(n: int, batch_size: int, size: int) -> _Plan:
    if n < 2:
        raise PipelineError(f"pretraining needs at least 2 images, got {n}", about="images")
    batch = min(batch_size, n) // size * size  # global; each process takes batch / size
    if batch < size:
        raise PipelineError(f"{n} images cannot feed {size} processes", about="images")
    # drop the last partial batch: NT-Xent wants full batches
    return _Plan(n, size, batch, batch // size, n // batch)


def _memory_format(cfg: Recipe) -> torch.memory_format:
    return torch.channels_last if cfg.channels_last else torch.contiguous_format


def _initial_state(
    shape: tuple[int, ...],
    model: Mapping[str, object],
    cfg: Recipe,
    seed: int,
    device: torch.device,
    amp_dtype: torch.dtype | None,
    plan: _Plan,
) -> tuple[TrainState, nn.Module]:
    """A new training state on `device`, and the network module the steps run."""
    encoder, head = build_model(shape[-1], shape[1], **model)
    encoder = encoder.to(device, memory_format=_memory_format(cfg))
    head = head.to(device)
    # One network module for the step: DDP (and synchronised BN) across processes.
    net = nn.Sequential(encoder, head)
    if cfg.batchnorm == "per_view":  # inside DDP: one forward per step, as DDP requires
        net = PerView(net)
    if plan.size > 1:
        net = data_parallel(net, device)
    # lr scaled by the global batch
    optimizer = build_optimizer([encoder, head], plan.batch, **cfg.optimizer_kwargs())
    total_steps = plan.steps_per_epoch * cfg.epochs
    warmup_steps = plan.steps_per_epoch * cfg.warmup_epochs
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: warmup_cosine(s, warmup_steps, total_steps)
    )
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype == torch.float16)
    order_gen = torch.Generator().manual_seed(seed)
    view_gen = torch.Generator(device=device).manual_seed(seed + 1)
    return TrainState(encoder, head, optimizer, schedule, scaler, order_gen, view_gen), net


def _resume(state: TrainState, path: Path | None, rank: int, size: int, on_epoch) -> None:
    """Restore `state` from the resumable state at `path`, if there is a readable one; the
    restored epochs are replayed through `on_epoch`."""
    saved = _load_resume(path) if rank == 0 else None
    if size > 1:  # rank 0 reads the state (a file on its machine) and hands it to the others
        box = [saved]
        torch.distributed.broadcast_object_list(box, src=0)
        saved = box[0]
    if saved is None:
        return
    state.load_state_dict(saved)
    log.info("resuming from %s after epoch %d", path, len(state.history))
    if on_epoch is not None and rank == 0:
        for epoch, metrics in enumerate(state.history):
            on_epoch(epoch, metrics)


def _load_resume(path: Path | None) -> dict | None:
    if path is None or not path.is_file():
        return None
    try:
        return unseal(load_state(path), path, RESUME_KEYS)
    except PipelineError as e:  # written atomically, so only foreign damage lands here
        log.warning("unreadable resumable state (%s); starting from epoch 1", e)
        return None


@dataclass(frozen=True)
class _Run:
    """What stays the same through a run's epochs (TrainState holds what changes)."""

    images: np.ndarray
    cfg: Recipe
    seed: int
    device: torch.device
    rank: int
    plan: _Plan
    net: nn.Module  # what a step runs: encoder -> head, compiled or not
    autocast: AbstractContextManager
    sampler: torch.utils.data.DistributedSampler | None  # None: one process
    resume_path: Path | None


def _epoch(run: _Run, state: TrainState, epoch: int) -> dict[str, float]:
    """Train one epoch; its metrics: the mean loss over the global batches, the learning rate of
    the last step and the throughput."""
    state.encoder.train()
    state.head.train()
    start = time.perf_counter()
    losses, lr = _steps(run, state, _batches(run, state, epoch))
    if run.plan.size > 1:  # the global batch's loss, and the same divergence verdict everywhere
        torch.distributed.all_reduce(losses)
        losses /= run.plan.size
    losses = losses.cpu()
    _check_finite(losses, epoch, run.resume_path)
    seconds = time.perf_counter() - start
    return {
        "loss": float(losses.mean()),
        "lr": lr,
        # source images, 2 views each
        "images_per_s": run.plan.steps_per_epoch * run.plan.batch / seconds,
        "epoch_seconds": seconds,
    }


def _batches(run: _Run, state: TrainState, epoch: int) -> list[np.ndarray]:
    """This process's batches of image indices for `epoch`, in the epoch's seeded order."""
    if run.sampler is None:
        perm = torch.randperm(run.plan.n, generator=state.order_gen).numpy()
    else:  # this process's share of a seeded global shuffle, and its own augmentations
        run.sampler.set_epoch(epoch)
        perm = np.fromiter(iter(run.sampler), dtype=np.int64)
        state.view_gen.manual_seed(_rank_seed(run.seed, run.rank, epoch))
    local = run.plan.local
    return [perm[i * local : (i + 1) * local] for i in range(run.plan.steps_per_epoch)]


def _steps(run: _Run, state: TrainState, batches: list[np.ndarray]) -> tuple[torch.Tensor, float]:
    """One optimizer step per batch; the float32 losses (on the device: one sync per epoch, not
    per step) and the learning rate the last step used."""
    cfg, device, local = run.cfg, run.device, run.plan.local
    optimizer, scaler = state.optimizer, state.scaler
    memory_format = _memory_format(cfg)
    losses = []
    lr = optimizer.param_groups[0]["lr"]
    loader = _loader(run.images, batches, cfg, device)
    epoch = f"epoch {len(state.history) + 1}/{cfg.epochs}"  # history grows after each epoch
    for step, x_u8 in enumerate(track(loader, epoch, run.plan.batch, show=run.rank == 0)):
        if device.type == "cpu" and step % TRIM_EVERY == 0:
            release_free_heap()
        x = to_images(x_u8, device)
        views = torch.cat([simclr_view(x, state.view_gen, **cfg.augment) for _ in range(2)])
        views = views.contiguous(memory_format=memory_format)
        with run.autocast:
            z = run.net(views)
        loss = nt_xent(z[:local], z[local:], cfg.temperature)  # float32 inside
        lr = optimizer.param_groups[0]["lr"]  # the rate this step uses
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.schedule.step()
        losses.append(loss.detach())
    return torch.stack(losses).float(), lr


def _check_finite(losses: torch.Tensor, epoch: int, resume_path: Path | None) -> None:
    """A divergence is caught before the state is saved, so the last good resumable state stays
    the one on disk."""
    bad = torch.nonzero(~torch.isfinite(losses)).view(-1)
    if len(bad):
        raise PipelineError(
            f"pretraining diverged: non-finite loss at epoch {epoch + 1}, step {int(bad[0]) + 1}"
            + (f" (the state after epoch {epoch} is kept in {resume_path})" if epoch else ""),
            about="divergence",
        )


def _knn_due(cfg: Recipe, epoch: int) -> bool:
    """The kNN monitor runs every pretrain.knn_every epochs and after the last."""
    return bool(cfg.knn_every) and ((epoch + 1) % cfg.knn_every == 0 or epoch + 1 == cfg.epochs)


def _close_epoch(run: _Run, state: TrainState, epoch: int, metrics: dict, on_epoch) -> None:
    """Rank 0's end of an epoch: save the resumable state, log, report."""
    if run.resume_path is not None:
        save_state(state.state_dict(), run.resume_path)
    log.info(
        "epoch %d/%d loss %.4f lr %.4f %.0f images/s%s",
        *(epoch + 1, run.cfg.epochs, metrics["loss"], metrics["lr"], metrics["images_per_s"]),
        f" knn {metrics['knn_accuracy']:.4f}" if "knn_accuracy" in metrics else "",
    )
    if on_epoch is not None:
        on_epoch(epoch, metrics)


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


def _knn_monitor(encoder: Encoder, data: Labelled, cfg: Recipe, device) -> float:
    train_x = extract_features(encoder, data.train_images, device)
    test_x = extract_features(encoder, data.test_images, device)
    encoder.train()  # extract_features switched it to eval
    return knn_accuracy(
        train_x, data.train_labels, test_x, data.test_labels, cfg.knn_k, cfg.knn_temperature
    )

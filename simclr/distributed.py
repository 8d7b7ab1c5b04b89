"""Data-parallel pretraining over torch.distributed, as torchrun starts it: which process this
is, the global batch of embeddings gathered with gradients, BN statistics synchronised across
processes, and DistributedDataParallel around encoder + head.

NCCL on CUDA, gloo on CPU. torch's SyncBatchNorm refuses CPU tensors, so on gloo the same
statistics are all-reduced here (sums with gradients); on CUDA torch's own is used.
"""

from __future__ import annotations

import datetime
import functools
import os

import torch
import torch.distributed as dist
from torch import nn

from simclr.errors import PipelineError

TIMEOUT = datetime.timedelta(minutes=60)


def world() -> tuple[int, int]:
    """(rank, world size); (0, 1) outside a process group."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_from_env(device: torch.device) -> torch.device:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE,
    MASTER_ADDR, ...): NCCL for CUDA, gloo otherwise. Returns this process's device (its
    LOCAL_RANK's GPU on CUDA)."""
    local, per_node = int(os.environ["LOCAL_RANK"]), int(os.environ["LOCAL_WORLD_SIZE"])
    if device.type == "mps":
        raise PipelineError(f"device mps runs in one process, not {per_node}", about="processes")
    if device.type == "cuda":
        if per_node > torch.cuda.device_count():
            raise PipelineError(
                f"{per_node} processes on this machine, but it has "
                f"{torch.cuda.device_count()} GPU(s); use one process per GPU",
                about="processes",
            )
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    # A long wait is normal: the others wait at the next collective while rank 0 alone runs
    # the kNN monitor and saves the state.
    dist.init_process_group(
        "nccl" if device.type == "cuda" else "gloo",
        timeout=TIMEOUT,
        device_id=device if device.type == "cuda" else None,
    )
    return device


def rank_device(device: torch.device) -> torch.device:
    """The CUDA device of this process (LOCAL_RANK) when several share a machine."""
    if device.type != "cuda" or world()[1] == 1:
        return device
    index = int(os.environ.get("LOCAL_RANK", "0"))
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


class _GatherWithGrad(torch.autograd.Function):
    """all_gather whose backward hands each rank the sum, over all ranks' losses, of the
    gradient with respect to its own slice: every anchor's loss reaches every embedding."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        rank, size = world()
        parts = [torch.empty_like(x) for _ in range(size)]
        dist.all_gather(parts, x.contiguous())
        ctx.rank, ctx.n = rank, x.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone(memory_format=torch.contiguous_format)  # never reduce autograd's own
        dist.all_reduce(grad)
        return grad[ctx.rank * ctx.n : (ctx.rank + 1) * ctx.n]


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Every rank's `x` concatenated in rank order (equal shapes), differentiable; `x` itself
    in a single process."""
    return x if world()[1] == 1 else _GatherWithGrad.apply(x)


class _SumWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        x = x.clone()
        dist.all_reduce(x)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class GlooSyncBatchNorm(nn.modules.batchnorm._BatchNorm):
    """SyncBatchNorm for CPU tensors: mean and (biased) variance over every process's batch,
    two all-reduced passes with gradients; running statistics as BatchNorm updates them. (Not a
    SyncBatchNorm subclass: DDP refuses those on CPU.) A mixin: `gloo_sync_batchnorm` makes one
    subclass per torch BN class, so the class it replaced (and its input check) stays known."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.is_cuda or world()[1] == 1:
            return super().forward(x)
        self._check_input_dim(x)
        dims = [0, *range(2, x.dim())]
        shape = [1, -1] + [1] * (x.dim() - 2)
        dtype = torch.promote_types(x.dtype, torch.float32)  # stats in fp32 under bf16 autocast
        xf = x.to(dtype)
        count = xf.numel() // xf.shape[1] * world()[1]  # every process has the same batch
        mean = _SumWithGrad.apply(xf.sum(dims)) / count
        centred = xf - mean.view(shape)
        var = _SumWithGrad.apply(centred.square().sum(dims)) / count
        y = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (
                    1.0 / float(self.num_batches_tracked)
                    if self.momentum is None
                    else self.momentum
                )
                unbiased = var * count / max(count - 1, 1)
                self.running_mean.lerp_(mean.to(self.running_mean.dtype), momentum)
                self.running_var.lerp_(unbiased.to(self.running_var.dtype), momentum)
        return y.to(x.dtype)


@functools.cache
def _gloo_sync(cls: type) -> type:
    return type(f"GlooSync{cls.__name__}", (GlooSyncBatchNorm, cls), {})


def gloo_sync_batchnorm(net: nn.Module) -> None:
    """Each BN of `net` synchronised over the gloo process group, in place: the same module,
    parameters and buffers, its class swapped for `GlooSyncBatchNorm` + the BN class it was."""
    for m in net.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and not isinstance(m, GlooSyncBatchNorm):
            m.__class__ = _gloo_sync(type(m))


def data_parallel(net: nn.Module, device: torch.device) -> nn.Module:
    """`net` (encoder -> head) as one DistributedDataParallel module with synchronised BN. The BN
    layers are replaced in place (same parameters), so the encoder's and head's state dicts stay
    the ones to save."""
    if device.type == "cuda":
        net = nn.SyncBatchNorm.convert_sync_batchnorm(net)
    else:
        gloo_sync_batchnorm(net)
    ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(net, device_ids=ids)

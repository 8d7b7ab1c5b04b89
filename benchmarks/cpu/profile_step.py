"""Where one of our CPU pretraining steps spends its time, and two A/B checks against the way
lightly's example runs its step.

    python -m benchmarks.cpu.profile_step [--batch 256] [--threads 2] [--steps 2]
        [--precision fp32|bf16] [--channels-last] [--skip-ab] [--chunks 1,2] [--compile] [--ops N]
        [--glibc-default]

It prints its tables and writes no results file.

The step is the body of `simclr.train.pretrain`'s loop, rebuilt from the same simclr modules
(uint8 -> float, two batched views, one forward of the 2N views, NT-Xent, backward, LARS), on
random uint8 images, with each phase timed separately (wall clock, median over `--steps` after a
warm-up step). Then the forward + backward alone is timed with the 2N views in one forward
(ours) or in `--chunks` forwards of 2N / chunks (2: lightly's example, one forward per view;
more: BN over fewer views, not the paper's), each with torch's deterministic algorithms on (as
pretrain sets on CPU) and off (torch's default, as in lightly). With
`--compile`, the forward + backward eager against torch.compile.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from types import SimpleNamespace

import torch

from benchmarks.common import deterministic
from simclr.augment import simclr_view
from simclr.config import AugmentConfig, ModelConfig, PretrainConfig
from simclr.device import reuse_freed_memory, to_images
from simclr.loss import nt_xent
from simclr.models import build_model
from simclr.optim import build_optimizer

MODEL = ModelConfig(encoder="resnet18", head="v1", proj_hidden_dim=512, proj_dim=128)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=2, help="timed steps per measurement")
    p.add_argument("--precision", choices=["fp32", "bf16"], default="fp32")
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--skip-ab", action="store_true", help="only the phase breakdown")
    p.add_argument(
        "--chunks",
        type=lambda v: [int(c) for c in v.split(",")],
        default=[1, 2],
        help="forwards the 2N views are split into, compared in the A/B (comma-separated)",
    )
    p.add_argument("--compile", action="store_true", help="also eager against torch.compile")
    p.add_argument(
        "--glibc-default",
        action="store_true",
        help="leave glibc's allocator as it is (pretrain reuses freed heap memory on CPU)",
    )
    p.add_argument(
        "--ops", type=int, default=0, help="also the N costliest operators for each --chunks"
    )
    return p.parse_args(argv)


def setup(args: argparse.Namespace) -> SimpleNamespace:
    """The model, optimizer, autocast and memory format of the step, seeded."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if not args.glibc_default:
        reuse_freed_memory()  # as pretrain does on CPU
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    autocast = (
        torch.autocast("cpu", dtype=torch.bfloat16) if args.precision == "bf16" else nullcontext()
    )
    encoder, head = build_model(3, 32, **MODEL.model_dump())
    encoder = encoder.to(memory_format=fmt)
    cfg = PretrainConfig(batch_size=args.batch, optimizer="lars", warmup_epochs=0)
    optimizer = build_optimizer([encoder, head], args.batch, optimizer=cfg.optimizer)
    return SimpleNamespace(
        encoder=encoder,
        head=head,
        optimizer=optimizer,
        autocast=autocast,
        fmt=fmt,
        temperature=cfg.temperature,
        b=args.batch,
    )


def phases(s: SimpleNamespace, x_u8: torch.Tensor, aug: AugmentConfig, g) -> dict[str, float]:
    """One step of pretrain's loop, each phase timed (seconds)."""
    t = {}

    def mark(name, start):
        t[name] = time.perf_counter() - start
        return time.perf_counter()

    start = time.perf_counter()
    x = to_images(x_u8, torch.device("cpu"))
    start = mark("uint8 -> float", start)
    views = torch.cat([simclr_view(x, g, **aug.model_dump()) for _ in range(2)]).contiguous(
        memory_format=s.fmt
    )
    start = mark("augment (2 views)", start)
    with s.autocast:
        h = s.encoder(views)
        start = mark("encoder forward", start)
        z = s.head(h)
    start = mark("head forward", start)
    loss = nt_xent(z[: s.b], z[s.b :], s.temperature)
    start = mark("NT-Xent", start)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    start = mark("backward", start)
    s.optimizer.step()
    mark("LARS step", start)
    return t


def phase_table(s: SimpleNamespace, args: argparse.Namespace) -> None:
    aug, g = AugmentConfig(), torch.Generator().manual_seed(1)
    x_u8 = torch.randint(0, 256, (s.b, 32, 32, 3), dtype=torch.uint8)
    deterministic(True)  # as pretrain does on CPU
    phases(s, x_u8, aug, g)  # warm-up
    runs = [phases(s, x_u8, aug, g) for _ in range(args.steps)]
    total = sum(statistics.median(r[k] for r in runs) for k in runs[0])
    print(
        f"\nour step, batch {s.b} ({2 * s.b} views), {args.precision}, "
        f"channels_last={args.channels_last}, {args.threads} threads: {total:.2f} s "
        f"= {s.b / total:.1f} source images/s"
    )
    print("| phase | seconds (median) | share |\n| --- | ---: | ---: |")
    for k in runs[0]:
        m = statistics.median(r[k] for r in runs)
        print(f"| {k} | {m:.3f} | {100 * m / total:.1f}% |")


def forward_backward(s: SimpleNamespace, views: torch.Tensor, chunks: int) -> float:
    """Seconds of forward, NT-Xent and backward of the 2N views: in one forward (ours) or in
    `chunks` forwards (2: lightly's example, model(x0), model(x1))."""
    start = time.perf_counter()
    with s.autocast:
        z = torch.cat([s.head(s.encoder(v)) for v in views.chunk(chunks)])
    loss = nt_xent(z[: s.b], z[s.b :], 0.5)
    s.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    return time.perf_counter() - start


def ab_table(s: SimpleNamespace, args: argparse.Namespace) -> None:
    views = torch.rand(2 * s.b, 3, 32, 32).contiguous(memory_format=s.fmt)
    print(f"\nforward + NT-Xent + backward alone, batch {s.b}, {args.precision}:")
    print("| views | deterministic algorithms | seconds (median) | source images/s |")
    print("| --- | --- | ---: | ---: |")
    for det in (True, False):
        deterministic(det)
        for chunks in args.chunks:
            forward_backward(s, views, chunks)  # warm-up for this shape
            m = statistics.median(forward_backward(s, views, chunks) for _ in range(args.steps))
            label = f"{chunks} forward{'s' * (chunks > 1)} of {2 * s.b // chunks}"
            print(f"| {label} | {'on' if det else 'off'} | {m:.3f} | {s.b / m:.1f} |")
    deterministic(False)


def op_seconds(s: SimpleNamespace, views: torch.Tensor, chunks: int) -> dict[str, float]:
    """Self CPU seconds by operator of one forward + NT-Xent + backward (torch.profiler), after
    a warm-up step for this shape."""
    forward_backward(s, views, chunks)
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        forward_backward(s, views, chunks)
    return {e.key: e.self_cpu_time_total / 1e6 for e in prof.key_averages()}


def ops_table(s: SimpleNamespace, args: argparse.Namespace) -> None:
    """The operators that take the time, side by side for each `--chunks` layout: where one
    forward of 2N and two of N differ."""
    views = torch.rand(2 * s.b, 3, 32, 32).contiguous(memory_format=s.fmt)
    deterministic(True)  # as pretrain does on CPU
    by_layout = {c: op_seconds(s, views, c) for c in args.chunks}
    deterministic(False)
    first = by_layout[args.chunks[0]]
    top = sorted(first, key=first.get, reverse=True)[: args.ops]
    heads = " | ".join(f"{c} forward{'s' * (c > 1)} (s)" for c in args.chunks)
    print(f"\nself CPU seconds by operator, batch {s.b}, {args.precision}:")
    print(f"| operator | {heads} |\n| --- |{' ---: |' * len(args.chunks)}")
    for op in [*top, "total"]:
        cells = [sum(t.values()) if op == "total" else t.get(op, 0.0) for t in by_layout.values()]
        print(f"| {op} | " + " | ".join(f"{v:.3f}" for v in cells) + " |")


def compile_table(s: SimpleNamespace, args: argparse.Namespace) -> None:
    """Our forward + NT-Xent + backward eager and under torch.compile (encoder and head as one
    module, as pretrain's `compile: true` does), stepped in turn so that both share the
    machine's noise; the first compiled call, which compiles, is reported on its own."""
    views = torch.rand(2 * s.b, 3, 32, 32).contiguous(memory_format=s.fmt)
    eager = torch.nn.Sequential(s.encoder, s.head)
    compiled = torch.compile(eager)  # shares the parameters

    def once(net) -> float:
        start = time.perf_counter()
        with s.autocast:
            z = net(views)
        loss = nt_xent(z[: s.b], z[s.b :], 0.5)
        s.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        return time.perf_counter() - start

    first = once(compiled)
    once(eager)  # warm-up for this shape
    times = [(once(eager), once(compiled)) for _ in range(args.steps)]
    e, c = (statistics.median(t[i] for t in times) for i in (0, 1))
    print(f"\ntorch.compile, batch {s.b}, {args.precision}: first call (compiling) {first:.1f} s")
    print("| step | seconds (median) | source images/s |")
    print("| --- | ---: | ---: |")
    print(f"| eager | {e:.3f} | {s.b / e:.1f} |")
    print(f"| compiled | {c:.3f} | {s.b / c:.1f} ({e / c:.2f}x) |")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    s = setup(args)
    phase_table(s, args)
    if not args.skip_ab:
        ab_table(s, args)
    if args.ops:
        ops_table(s, args)
    if args.compile:
        compile_table(s, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

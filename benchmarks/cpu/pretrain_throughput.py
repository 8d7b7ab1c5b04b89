"""SimCLR pretraining throughput on CPU: our pipeline against lightly, and our batched
augmentation against torchvision's per-image transforms.

Run from the repository root:

    python -m benchmarks.cpu.pretrain_throughput --data CIFAR10_DEV/train [--repeats N]
        [--images N] [--batch B] [--threads T] [--out benchmarks/results/pretrain_throughput.jsonl]

It measures, on 32 px RGB images from the CIFAR-10 dev folder, in one process:

(a) ours: `simclr.train.pretrain` with a ResNet-18 (CIFAR stem) + v1 head (512-512-128), LARS,
    the paper's augmentations made in batches by `simclr.augment`, in fp32 and in bf16 autocast
    with channels_last; with `pretrain.batchnorm` joint (one forward of the 2N views, BatchNorm
    over all of them: the paper's) and per_view (one forward per view, BatchNorm over each
    view's N: lightly's example). One epoch over the subset per repeat; a first epoch is run
    and discarded.
(b) the lightly reference: lightly's SimCLRTransform on PIL images in a torch DataLoader
    (num_workers 0 and 2), SimCLRProjectionHead(512, 512, 128), NTXentLoss(0.5), the same
    encoder type (our torchvision ResNet-18 with the CIFAR stem), lightly's LARS, the training
    step of lightly's SimCLR example (per view: `model(x0), model(x1)`) and the same step with
    the views concatenated (joint: `model(cat([x0, x1]))`); in fp32, and in bf16 autocast with
    channels_last (the
    model and both views channels_last, the forwards under `torch.autocast("cpu",
    torch.bfloat16)`, the loss in fp32 as ours). One warm-up step, then repeats of as many
    steps as an epoch of ours has.
(c) augmentation alone: `simclr.device.to_images` + two `simclr.augment.simclr_view` calls per
    batch against torchvision per-image transforms (v1 and v2) making two views of each PIL
    image, in this process and in a 2-worker DataLoader.

Every figure is source images per second (each image gives two views). The median over the
repeats is reported, with min and max; the JSON keeps every raw number and the settings. Each
measurement runs in a fresh interpreter (this script with `--only KEY`), so that no setting
one of them makes (threads, allocator, compiled code) carries over to the next; the headline
ratios are ours against the faster lightly setup at the same precision and BatchNorm
semantics: the same work on both sides.
This is a benchmark, not a test: it needs the dev data and lightly (`pip install -e .[dev]`).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, cpu_model, deterministic, results_file, save
from simclr.augment import simclr_view
from simclr.config import AugmentConfig, ModelConfig, PretrainConfig
from simclr.device import to_images
from simclr.io import write_json
from simclr.models import build_model
from simclr.train import Recipe, pretrain
from tasks.arguments import recipe_kwargs

MODEL = ModelConfig(encoder="resnet18", head="v1", proj_hidden_dim=512, proj_dim=128)
TEMPERATURE = 0.5
LR, MOMENTUM, WEIGHT_DECAY = 0.3, 0.9, 1e-6  # ours' defaults, given to lightly's LARS too

log = logging.getLogger("benchmark")


# --- data -----------------------------------------------------------------------------------


def load_subset(root: Path, n: int, seed: int = 0) -> np.ndarray:
    """`n` images, uint8 (n, 32, 32, 3), drawn at random (seeded) from the image folder."""
    try:
        from simclr.data.imagefolder import load_image_folder
    except ImportError:  # the loader is newer than this script; decode with PIL directly
        load_image_folder = None
    if load_image_folder is not None:
        images = load_image_folder(root, image_size=None, channels=3).images
    else:
        from PIL import Image

        paths = sorted(root.glob("*/*.jpg"))
        images = np.stack([np.asarray(Image.open(p).convert("RGB")) for p in paths])
    if n > len(images):
        raise SystemExit(f"--images {n}: the folder {root} has only {len(images)} images")
    pick = np.random.default_rng(seed).permutation(len(images))[:n]
    return np.ascontiguousarray(images[np.sort(pick)])


def loadavg() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def busy_cpu_seconds() -> float | None:
    """CPU seconds the whole machine has spent busy since boot (Linux /proc/stat)."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    # guest time is already counted in user time
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()  # this process and its reaped children (the DataLoader workers)
    return t.user + t.system + t.children_user + t.children_system


def measured(fn, *a) -> dict:
    """Run one measurement and record how busy the machine was: the CPU that other processes
    used meanwhile, in cores (on a 2-core machine any of it slows multi-threaded torch a lot:
    its threads wait for each other at every op), and the load average before and after."""
    load, busy, own, wall = loadavg(), busy_cpu_seconds(), own_cpu_seconds(), time.perf_counter()
    result = fn(*a)
    wall = time.perf_counter() - wall
    own = own_cpu_seconds() - own
    busy_after = busy_cpu_seconds()
    others = None if busy is None or busy_after is None else (busy_after - busy - own) / wall
    result["machine"] = {
        "loadavg_before": load,
        "loadavg_after": loadavg(),
        "wall_seconds": wall,
        "own_cpu_cores": own / wall,
        "other_processes_cpu_cores": None if others is None else max(0.0, others),
    }
    return result


def summary(values: list[float]) -> dict:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "raw": values,
    }


# --- (a) ours -------------------------------------------------------------------------------


def measure_ours(images, args, precision: str, channels_last: bool, batchnorm: str) -> dict:
    cfg = PretrainConfig(
        epochs=args.repeats + 1,  # the first epoch is warm-up
        batch_size=args.batch,
        device="cpu",
        threads=args.threads,
        precision=precision,
        channels_last=channels_last,
        batchnorm=batchnorm,
        optimizer="lars",
        lr=LR,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
        warmup_epochs=0,
        temperature=TEMPERATURE,
        augment=AugmentConfig(),  # the paper's; blur is off at 32 px (blur_min_size=33)
    )
    out = pretrain(images, MODEL.model_dump(), Recipe(**recipe_kwargs(cfg)), seed=0)
    steady = out.history[1:]
    return {
        **summary([h["images_per_s"] for h in steady]),
        "warmup_images_per_s": out.history[0]["images_per_s"],
        "epoch_seconds": [h["epoch_seconds"] for h in out.history],
        "loss": [h["loss"] for h in out.history],
        "precision": out.precision,
        "channels_last": channels_last,
        "batchnorm": batchnorm,
        "images_per_repeat": (len(images) // args.batch) * args.batch,
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
    }


# --- (b) the lightly reference ----------------------------------------------------------------


class PILDataset(torch.utils.data.Dataset):
    """In-memory uint8 images handed out as PIL images through a transform, as a lightly user's
    dataset would after decoding (decoding the JPEGs is left out: that favours the reference)."""

    def __init__(self, images: np.ndarray, transform):
        self.images, self.transform = images, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        from PIL import Image

        return self.transform(Image.fromarray(self.images[i]))


def lightly_transform():
    from lightly.transforms import SimCLRTransform

    # The paper's CIFAR setting with AugmentConfig()'s values: crop area 0.08-1 (lightly's
    # ratio is torchvision's 3/4-4/3), flip 0.5, jitter 0.8/0.8/0.8/0.2 x strength 1.0 with
    # p 0.8, grayscale 0.2, no blur at 32 px. normalize=None: our encoder normalizes inside
    # forward, so lightly's ImageNet normalization would normalize twice (and cost a little).
    return SimCLRTransform(
        input_size=32,
        cj_prob=0.8,
        cj_strength=1.0,
        cj_bright=0.8,
        cj_contrast=0.8,
        cj_sat=0.8,
        cj_hue=0.2,
        min_scale=0.08,
        random_gray_scale=0.2,
        gaussian_blur=0.0,
        hf_prob=0.5,
        vf_prob=0.0,
        rr_prob=0.0,
        normalize=None,
    )


def lightly_step(args, bf16: bool = False, joint: bool = False) -> tuple:
    """lightly's SimCLR example as a step function (each view through the model on its own,
    then the loss, backward, LARS) and the model it trains. With `bf16`, what a lightly user
    turns on for speed: the model and views channels_last, the forwards under bf16 autocast
    (the loss in fp32, as ours). With `joint`, both views go through the model in one forward,
    concatenated (BatchNorm over all 2N, the paper's semantics and ours by default)."""
    from lightly.loss import NTXentLoss
    from lightly.models.modules import SimCLRProjectionHead
    from lightly.utils.lars import LARS

    torch.manual_seed(0)
    encoder = build_model(3, 32, **MODEL.model_dump())[
        0
    ]  # the same encoder type: torchvision ResNet-18
    model = torch.nn.Sequential(encoder, SimCLRProjectionHead(512, 512, 128))
    fmt = torch.channels_last if bf16 else torch.contiguous_format
    model = model.to(memory_format=fmt)
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
    criterion = NTXentLoss(temperature=TEMPERATURE)
    optimizer = LARS(
        model.parameters(),
        lr=LR * args.batch / 256,
        momentum=MOMENTUM,
        weight_decay=WEIGHT_DECAY,
    )

    def step(views) -> torch.Tensor:
        x0, x1 = (v.contiguous(memory_format=fmt) for v in views)
        with autocast:
            z0, z1 = model(torch.cat([x0, x1])).chunk(2) if joint else (model(x0), model(x1))
        loss = criterion(z0.float(), z1.float())
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        return loss.detach()

    return step, model


def measure_lightly(images, args, workers: int, bf16: bool = False, joint: bool = False) -> dict:
    deterministic(False)  # lightly's default
    torch.set_num_threads(args.threads)
    step, model = lightly_step(args, bf16, joint)
    loader = torch.utils.data.DataLoader(
        PILDataset(images, lightly_transform()),
        batch_size=args.batch,
        shuffle=True,
        drop_last=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        generator=torch.Generator().manual_seed(0),
    )

    def batches(loader):
        while True:
            yield from loader

    model.train()
    it = batches(loader)
    start = time.perf_counter()
    step(next(it))  # warm-up: worker start, oneDNN primitive creation
    warmup_s = time.perf_counter() - start
    steps = len(images) // args.batch
    rates, losses = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        for _ in range(steps):
            losses.append(step(next(it)))
        seconds = time.perf_counter() - start
        rates.append(steps * args.batch / seconds)
        log.info(
            "lightly, %s, %d workers: %.1f images/s", "bf16" if bf16 else "fp32", workers, rates[-1]
        )
    it.close()
    del it, loader  # shut the persistent workers down
    return {
        **summary(rates),
        "warmup_step_seconds": warmup_s,
        "num_workers": workers,
        "precision": "bf16" if bf16 else "fp32",
        "channels_last": bf16,
        "batchnorm": "joint" if joint else "per_view",
        "images_per_repeat": steps * args.batch,
        "loss": [float(v) for v in torch.stack(losses)],
    }


# --- (c) augmentation alone -------------------------------------------------------------------


def measure_our_augment(images, args) -> dict:
    torch.set_num_threads(args.threads)
    deterministic(True)  # as inside pretrain on CPU
    g = torch.Generator().manual_seed(1)
    device = torch.device("cpu")
    u8 = torch.from_numpy(images)
    chunks = [u8[i : i + args.batch] for i in range(0, len(u8), args.batch)]

    def once() -> float:
        start = time.perf_counter()
        for chunk in chunks:
            x = to_images(chunk, device)
            torch.cat([simclr_view(x, g) for _ in range(2)])
        return len(u8) / (time.perf_counter() - start)

    once()  # warm-up
    rates = [once() for _ in range(args.repeats)]
    deterministic(False)
    return {**summary(rates), "batch": args.batch, "threads": args.threads}


def torchvision_view(version: str):
    if version == "v2":
        from torchvision.transforms import v2 as T

        to_tensor = [T.ToImage(), T.ToDtype(torch.float32, scale=True)]
    else:
        from torchvision import transforms as T

        to_tensor = [T.ToTensor()]
    return T.Compose(
        [
            T.RandomResizedCrop(32, scale=(0.08, 1.0)),
            T.RandomHorizontalFlip(),
            T.RandomApply([T.ColorJitter(0.8, 0.8, 0.8, 0.2)], p=0.8),
            T.RandomGrayscale(0.2),
            *to_tensor,
        ]
    )


class TwoViews:
    def __init__(self, view):
        self.view = view

    def __call__(self, img):
        return self.view(img), self.view(img)


def measure_torchvision_augment(images, args, version: str, workers: int) -> dict:
    from PIL import Image

    torch.set_num_threads(args.threads)
    torch.manual_seed(1)
    two = TwoViews(torchvision_view(version))
    if workers == 0:
        # The PIL images exist beforehand (as in a dataset of decoded images): only the two
        # views are timed, and the stacking of each batch, as a DataLoader's collate does.
        pil = [Image.fromarray(a) for a in images]

        def once() -> float:
            start = time.perf_counter()
            for i in range(0, len(pil), args.batch):
                views = [two(img) for img in pil[i : i + args.batch]]
                torch.stack([v[0] for v in views]), torch.stack([v[1] for v in views])
            return len(pil) / (time.perf_counter() - start)

    else:
        loader = torch.utils.data.DataLoader(
            PILDataset(images, two),
            batch_size=args.batch,
            num_workers=workers,
            persistent_workers=True,
        )

        def once() -> float:
            start = time.perf_counter()
            for _ in loader:
                pass
            return len(images) / (time.perf_counter() - start)

    once()  # warm-up (and worker start)
    rates = [once() for _ in range(args.repeats)]
    return {**summary(rates), "version": version, "num_workers": workers}


# --- report -----------------------------------------------------------------------------------


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
                return [f for f in line.split(":", 1)[1].split() if f in wanted]
    except OSError:
        pass
    return []


def table(rows: list[tuple[str, dict]], ref: float, ref_name: str) -> str:
    lines = [
        f"| configuration | images/s (median) | min | max | ratio to {ref_name} "
        "| other processes' CPU (cores) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, r in rows:
        others = r.get("machine", {}).get("other_processes_cpu_cores")
        load = "?" if others is None else f"{others:.2f}"
        lines.append(
            f"| {name} | {r['median']:.1f} | {r['min']:.1f} | {r['max']:.1f} "
            f"| {r['median'] / ref:.2f}x | {load} |"
        )
    return "\n".join(lines)


SEMANTICS = ("joint", "per_view")  # BatchNorm over all 2N views (the paper's) or each view's N
PRECISIONS = ("fp32", "bf16_cl")  # each compared with lightly at the same precision
_PRECISION_NAMES = {"fp32": "fp32", "bf16_cl": "bf16 autocast + channels_last"}
_SEMANTICS_NAMES = {
    "joint": "BN over 2N (one forward of both views)",
    "per_view": "BN per view (one forward per view)",
}
NAMES = {
    **{
        f"{who}_{bn}_{precision}{workers}": (
            f"{who}, {_PRECISION_NAMES[precision]}, {_SEMANTICS_NAMES[bn]}"
            + (f", num_workers={workers[2:]}" if workers else "")
        )
        for precision in PRECISIONS
        for bn in SEMANTICS
        for who, workers_list in (("ours", [""]), ("lightly", ["_w0", "_w2"]))
        for workers in workers_list
    },
    "augment_ours": "augment: ours (batched tensor ops, 2 views)",
    "augment_torchvision_v1_w0": "augment: torchvision v1 per image, in process",
    "augment_torchvision_v1_w2": "augment: torchvision v1 per image, 2 workers",
    "augment_torchvision_v2_w0": "augment: torchvision v2 per image, in process",
    "augment_torchvision_v2_w2": "augment: torchvision v2 per image, 2 workers",
}
TARGET = 1.0  # ours / lightly at the same precision and BatchNorm semantics


def section(title: str, keys: list[str], references: list[str], results: dict) -> tuple:
    """Print the table of `keys` against the fastest of `references` (or the first key when
    there is none); (the reference's key, its median)."""
    ref_key = max(references, key=lambda k: results[k]["median"]) if references else keys[0]
    ref = results[ref_key]["median"]
    print(f"\n### {title} (reference: {NAMES[ref_key]})\n")
    print(table([(NAMES[k], results[k]) for k in keys], ref, "reference"))
    return ref_key, ref


def summarise(results: dict) -> dict:
    """Print one table per precision and BatchNorm semantics (ours against the faster lightly
    setup doing the same work) and the augmentation table; the ratios and whether each meets
    the target."""
    out: dict[str, object] = {}
    for precision in PRECISIONS:
        for bn in SEMANTICS:
            ours, same = f"ours_{bn}_{precision}", f"_{bn}_{precision}"
            keys = [k for k in NAMES if k in results and same in k]
            keys = [k for k in keys if k == ours or k.startswith("lightly")]
            refs = [k for k in keys if k.startswith("lightly")]
            if ours not in keys or not refs:
                continue
            title = f"End-to-end pretraining, {precision}, {bn}"
            ref_key, ref = section(title, keys, refs, results)
            ratio = results[ours]["median"] / ref
            met = ratio >= TARGET
            out[f"{precision}_{bn}"] = {"reference": ref_key, "ratio": ratio, "met": met}
    aug = [k for k in NAMES if k in results and k.startswith("augment")]
    if aug:
        tv = [k for k in aug if "torchvision" in k]
        ref_key, ref = section("Augmentation alone", aug, tv, results)
        out["augment_reference"] = ref_key
        out["augment_ratio"] = results["augment_ours"]["median"] / ref
    return out


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeats", type=int, default=3, help="timed repeats per measurement")
    p.add_argument("--images", type=int, default=1024, help="source images in the subset")
    p.add_argument("--batch", type=int, default=256, help="source images per step")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads, for all")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help="an image folder root/<class>/*.jpg (CIFAR-10 dev's train/)",
    )
    p.add_argument("--out", type=Path, default=results_file("pretrain_throughput"))
    p.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["augment", "ours", "lightly"],
        help="leave out some measurements (for a quick look)",
    )
    p.add_argument("--only", choices=list(NAMES), help=argparse.SUPPRESS)  # one, in-process
    args = p.parse_args(argv)
    if args.repeats < 1 or args.threads < 1 or args.batch < 2 or args.images < args.batch:
        p.error("need --repeats >= 1, --threads >= 1, --batch >= 2 and --images >= --batch")
    return args


def idle_machine() -> dict:
    """The load average, and the CPU other processes use in one idle second, before we start;
    a warning when they use enough to spoil the figures."""
    load0, busy0 = loadavg(), busy_cpu_seconds()
    time.sleep(1.0)  # idle for a second: what the machine does without us
    busy1 = busy_cpu_seconds()
    others0 = None if busy0 is None or busy1 is None else max(0.0, busy1 - busy0)
    if others0 is not None and others0 > 0.2:
        log.warning(
            "other processes use %.1f CPU cores before the start: figures will be low and "
            "noisy (each measurement records the CPU other processes used meanwhile)",
            others0,
        )
    return {"loadavg_at_start": load0, "other_processes_cpu_cores_at_start": others0}


def measure_one(key: str, images: np.ndarray, args: argparse.Namespace) -> dict:
    """The measurement `key` of NAMES, in this process."""
    if key == "augment_ours":
        return measured(measure_our_augment, images, args)
    if key.startswith("augment_torchvision"):
        _, _, version, workers = key.split("_")
        return measured(measure_torchvision_augment, images, args, version, int(workers[1:]))
    bf16, joint = "bf16" in key, "_joint_" in key
    if key.startswith("ours"):
        bn = "joint" if joint else "per_view"
        return measured(measure_ours, images, args, "bf16" if bf16 else "fp32", bf16, bn)
    workers = int(key.rsplit("_w", 1)[1])
    return measured(measure_lightly, images, args, workers, bf16, joint)


def wanted(args: argparse.Namespace) -> list[str]:
    groups = {"augment": "augment", "ours": "ours", "lightly": "lightly"}
    return [k for k in NAMES if not any(k.startswith(groups[g]) for g in args.skip)]


def measure_all(args: argparse.Namespace) -> dict[str, dict]:
    """Every measurement not skipped, each in a fresh interpreter (`--only KEY`)."""
    results: dict[str, dict] = {}
    for key in wanted(args):
        log.info("%s", NAMES[key])
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, "-m", __spec__.name, "--only", key, "--out", str(out)]
            subprocess.run([*cmd, *passed(args)], cwd=ROOT, check=True)
            results[key] = json.loads(out.read_text())
        log.info("%s: %.1f images/s", key, results[key]["median"])
    return results


def passed(args: argparse.Namespace) -> list[str]:
    """The settings every measurement shares, as command-line options."""
    return [
        *("--repeats", str(args.repeats), "--images", str(args.images)),
        *("--batch", str(args.batch), "--threads", str(args.threads), "--data", str(args.data)),
    ]


def settings(args: argparse.Namespace, images: np.ndarray) -> dict:
    return {
        "images": args.images,
        "image_shape": list(images.shape[1:]),
        "batch": args.batch,
        "repeats": args.repeats,
        "threads": args.threads,
        "data": str(args.data),
        "model": "resnet18, CIFAR stem, v1 head 512-512-128",
        "optimizer": f"LARS lr {LR} x batch/256, momentum {MOMENTUM}, wd {WEIGHT_DECAY}",
        "temperature": TEMPERATURE,
        "unit": "source images per second (two views each), median over repeats",
    }


def environment(args: argparse.Namespace) -> dict:
    import torchvision

    try:
        import lightly

        lightly_version = lightly.__version__
    except ImportError:
        lightly_version = None
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "lightly": lightly_version,
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": args.threads,
        "mkldnn_bf16": bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()),
        "platform": platform.platform(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("simclr.data.imagefolder").setLevel(logging.WARNING)
    torch.set_num_threads(args.threads)
    if args.only:  # one measurement, for the parent process
        result = measure_one(args.only, load_subset(args.data, args.images), args)
        write_json(args.out, result)
        return 0
    machine = idle_machine()
    t0 = time.perf_counter()
    images = load_subset(args.data, args.images)
    log.info("%d images %s from %s", len(images), images.shape[1:], args.data)
    results = measure_all(args)
    total_s = time.perf_counter() - t0
    summary_out = summarise(results)
    print(f"\ntotal {total_s:.0f} s")
    record = {
        "settings": settings(args, images),
        "environment": environment(args),
        "total_seconds": total_s,
        **machine,
        "summary": summary_out,
        "results": results,
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())

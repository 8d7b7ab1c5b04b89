"""`simclr init`'s choices: the params of a SimCLR run on a user's image folder, each with its
reason, sized so that the whole `simclr run` fits a budget of minutes on this machine.

Pure functions of what `tasks.init_folder` saw and `tasks.init_timing` measured. The cost model
of a run is `estimate`: its constants come from benchmarks/README.md (2-core CPU figures, so a
faster machine only finishes early), and a safety margin covers a shared machine's noise.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from simclr.config import (
    NAME,
    AugmentConfig,
    DataConfig,
    DatasetConfig,
    EvaluateConfig,
    FinetuneConfig,
    ModelConfig,
    Params,
    ValidateConfig,
)
from simclr.data.sampling import per_class_count
from simclr.errors import PipelineError
from simclr.finetune import finetune_steps
from tasks.init_folder import Folder

# Square sides init picks from: the common sizes of image datasets (MNIST 28, CIFAR 32, STL 96,
# ImageNet 224); the sample's typical side is rounded down to one of them (never upscaled).
SIDES = (8, 16, 24, 28, 32, 48, 64, 96, 128, 160, 192, 224)
# Largest side per device. CPU: the small encoder at 64 px costs 4x a 32 px image, so a 2-core
# machine (benchmarks/README.md: ~20-300 images/s at 32 px) goes beyond 32 px only when the
# budget still buys PREFER_EPOCHS; an accelerator: the paper's ImageNet side.
MAX_SIDE = {"cpu": 64, "accelerator": 224}
BASE_SIDE = {"cpu": 32, "accelerator": 96}  # measured first; larger only if affordable
PREFER_EPOCHS = 100  # a larger side is taken only if it still gets this many epochs (the paper's
# shortest ImageNet schedule); below it, epochs are worth more than pixels
MIN_EPOCHS = 5  # per replica for 3 or 2 replicas: the CIFAR-10 dev pipeline beat random init by 8
# points after 5 epochs (benchmarks/README.md cifar10_dev_pipeline.py); fewer -> fewer replicas
MAX_EPOCHS = 1000  # the paper's longest CIFAR-10 schedule; a large budget stops there
CROP_MIN_SIDE = 14  # below, the paper's 0.08 crop is under 4x4 pixels (8x8 digits: 2x2)
SMALL_CROP = (0.3, 1.0)  # params.yaml's crop for 8x8 digits (docs/method.md "Pretraining")
ASPECT_ALIKE = 1.1  # widest/narrowest aspect ratio up to which stretching distorts all alike
CPU_SGD_LR = 0.5  # docs/method.md, SGD or LARS: SGD (Nesterov) lr 0.5 beat LARS at batch 256
PAPER_LARS_LR = 0.3  # the paper: LARS, lr 0.3 x batch / 256
TEMPERATURE = 0.5  # the paper's CIFAR-10 setting (appendix B.9); 0.1 goes with batch 4096
# A CPU's recipe: what `benchmarks.cpu.budget_grid` found best for a fixed 10-minute budget on the
# CIFAR-10 dev folder (benchmarks/README.md): batch 128, crop from 0.2 and temperature 0.2 each
# beat init's earlier paper-like draft (256, 0.08, 0.5) in a 3-minute screen; together, after
# 10 minutes, a linear probe of 0.605 +- 0.009 against the draft's 0.596 +- 0.002 (2 seeds each:
# a lead within the spread).
CPU_BATCH = 128
CPU_CROP = (0.2, 1.0)
CPU_TEMPERATURE = 0.2
# Fine-tuning, measured on the CIFAR-10 dev folder with init's CPU recipe (benchmarks/README.md,
# evaluate_time): at 100 % labels 3 passes scored 0.582 against the linear probe's 0.573 (the
# library's 100-step cap: 0.494); at 10 %, 10 passes 0.514 against the probe's 0.510 (20: 0.536)
# and the evaluate stage took 114 s instead of 143 s.
FULL_FT_EPOCHS = 3  # fine-tuning at 100 % labels: this many passes over the split
FT_EPOCHS = 10  # passes over a smaller labelled subset (at least min_steps updates)
WARMUP_SHARE = 0.1  # of the epochs, warm-up: the paper's 10 of 100
MONITORS = 5  # kNN monitor runs per pretraining (plus the last epoch's)
SAFETY = 0.9  # of the budget planned; the rest absorbs a shared machine's slower moments
# (measured: a 30-minute plan at 0.75 with one-step timing epochs ran in 15.0 minutes, its
# pretraining 1.3x and its fine-tuning 2x faster than estimated; both are calibrated below)
FINETUNE_VIEW = 0.4  # a fine-tuning view costs this share of a pretraining source image
# (CIFAR-10 dev, small encoder, 32 px, bf16: 107,648 views in 67 s against 615 images/s)
CIFAR_JITTER_SIDE = 32  # up to this side, the paper's CIFAR-10 colour jitter strength 0.5
# (appendix B.9); its 1.0 is the ImageNet one

# Seconds of the run's parts that the measurement does not cover (benchmarks/README.md, 2 cores):
STAGE_START_S = 15.0  # a stage's interpreter and imports (9-15 s measured; 40 s when paged out)
SERVER_S = 10.0  # `simclr run`'s one Prefect server (3-8 s) and `simclr check`
DECODE_PER_S = 1200.0  # prepare: files/s decoded, 2 threads (1,209-3,176 at 32 px; 1,197 at 224)
VALIDATE_S = 30.0  # validate: 30.3 s on the CIFAR-10 dev folder, server included
VALIDATE_PER_ROW_S = 11 / 1e6  # +11 s for 1M manifest rows
PROBE_S = 18.0  # evaluate: the probes at 10k train images, raw pixels 3,072-d dominating (17.7 s)
PROBE_REF_INFERENCE_S = 1 / 3408  # that machine's small-encoder inference at 32 px (its speed)
FIGURES_S = 10.0  # evaluate: t-SNE of 1,000 points (4-8 s) and the figures
REPORT_S = 10.0  # report: its figures
# The embedded sets (simclr/data/embedded.py): images, classes, test share; all grayscale.
EMBEDDED = {"digits": (1797, 10, 0.2), "mnist": (5000, 10, 0.2), "faces": (196, 2, 0.2)}
EMBEDDED["textures"] = (600, 3, 0.2)


@dataclass(frozen=True)
class Split:
    """Images per class in the train and test splits the prepare stage will make."""

    train: list[int]
    test: list[int]

    @property
    def n_train(self) -> int:
        return sum(self.train)

    @property
    def n_test(self) -> int:
        return sum(self.test)


def split(train: Folder, test: Folder | None, test_fraction: float) -> Split:
    """Per-class counts of the splits: the test folder's, or a stratified share of train."""
    if test is not None:
        return Split(list(train.counts), list(test.counts))
    held = [per_class_count(n, test_fraction, spare=1) for n in train.counts]
    return Split([n - k for n, k in zip(train.counts, held, strict=True)], held)


@dataclass
class Recipe:
    """The chosen params and, per choice, one summary line (key: value, and why)."""

    params: Params
    lines: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # the estimate, by part
    timing: object = None  # the tasks.init_timing.Timing the recipe was sized with


def dataset_name(root) -> str:
    """The folder's name, or its parent's for a split folder (cifar10/train -> cifar10), as a
    valid dataset name (letters, digits, _ and -)."""
    name = root.name
    if name.lower() in ("train", "training", "trainval", "images", "data") and root.parent.name:
        name = root.parent.name
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", name).strip("_-")
    return name if NAME.fullmatch(name or "-") else "images"


def sides(folder: Folder, accelerator: bool) -> tuple[int, int]:
    """(base, largest) square side to consider: the sample's typical shorter side rounded down
    to a common size, capped by the device; base is measured first."""
    kind = "accelerator" if accelerator else "cpu"
    typical = folder.typical_side
    fitting = [s for s in SIDES if s <= min(typical, MAX_SIDE[kind])]
    largest = fitting[-1] if fitting else max(4, min(typical, SIDES[0]))
    return min(largest, BASE_SIDE[kind]), largest


def _pow2_at_most(n: int) -> int:
    return 1 << max(1, n).bit_length() - 1


def _batch(side: int, n_train: int, accelerator: bool) -> int:
    """Pretraining batch: CPU_BATCH on a CPU (measured best for a fixed budget); on an
    accelerator the paper's larger batches while the views fit (1024 up to 64 px, 512 to 128,
    else 256). At least 8 steps an epoch on small folders (NT-Xent needs 2 images)."""
    wanted = (1024 if side <= 64 else 512 if side <= 128 else 256) if accelerator else CPU_BATCH
    return max(2, min(wanted, _pow2_at_most(n_train // 8)))


def draft(
    train: Folder, test: Folder | None, device: str, side: int, name: str
) -> tuple[Params, list[str]]:
    """Every choice that does not depend on the measured speed, with one line of reason each;
    epochs and replicas are placeholders until `finish`."""
    accelerator = device != "cpu"
    where = f"on this {device}"
    colour = any(f.colour for f in (train, test) if f is not None)
    crop = train.aspect_spread > ASPECT_ALIKE
    sp = split(train, test, 0.2)
    batch = _batch(side, sp.n_train, accelerator)
    lars = accelerator and batch >= 512
    augment = AugmentConfig()
    if side <= CIFAR_JITTER_SIDE:
        augment = augment.model_copy(update={"jitter_strength": 0.5})
    if side < CROP_MIN_SIDE:
        augment = augment.model_copy(update={"crop_scale": SMALL_CROP})
    elif not accelerator:
        augment = augment.model_copy(update={"crop_scale": CPU_CROP})
    ft = FinetuneConfig()
    ft = ft.model_copy(
        update={
            "crop_scale": augment.crop_scale,
            "flip_p": augment.flip_p,
            "epochs": FT_EPOCHS,
            "max_steps": FULL_FT_EPOCHS * math.ceil(sp.n_train / min(ft.batch_size, sp.n_train)),
        }
    )
    model = ModelConfig(encoder="resnet18", proj_hidden_dim=512, proj_dim=128)
    raw = {
        "data": {"image_size": side, "resize": "crop" if crop else "stretch"},
        "datasets": {name: _dataset_entry(train, test)},
        "model": (model if accelerator else ModelConfig()).model_dump(),
        "pretrain": {
            "dataset": name,
            "batch_size": batch,
            "optimizer": "lars" if lars else "sgd",
            "lr": PAPER_LARS_LR if lars else CPU_SGD_LR,
            "lr_scaling": "linear",
            "temperature": TEMPERATURE if accelerator else CPU_TEMPERATURE,
            "loader_workers": 4 if accelerator else 0,
            "augment": augment.model_dump(),
        },
        "evaluate": {"finetune": ft.model_dump()},
        "transfer": {"datasets": []},
    }
    raw["data"]["channels"] = 3 if colour else 1
    if accelerator:
        raw["evaluate"]["batch_size"] = 1024
    params = Params.model_validate(raw)
    lines = _draft_lines(params, train, crop, colour, where, side)
    return params, lines


def _dataset_entry(train: Folder, test: Folder | None) -> dict:
    entry = {"source": "imagefolder", "root": str(train.root)}
    if test is not None:
        entry["test_root"] = str(test.root)
    return DatasetConfig.model_validate(entry).model_dump(exclude_defaults=True)


def _draft_lines(
    p: Params, train: Folder, crop: bool, colour: bool, where: str, side: int
) -> list[str]:
    """The summary's lines for `draft`'s choices."""
    accelerator = where != "on this cpu"
    typical, n = train.typical_side, len(train.sizes)
    spread = f"aspect ratios vary up to {train.aspect_spread:.2f}x" if crop else "one aspect ratio"
    ft = p.evaluate.finetune
    return [
        f"data.image_size = {side}: the sample's typical shorter side is {typical} px "
        f"({n} files)"
        + (", rounded down to a common size" if side < typical else "")
        + (f", at most {side} {where}" if side < min(SIDES[-1], typical) else ""),
        f"data.resize = {p.data.resize}: {spread} in the sample"
        + (" (crop keeps the proportions)" if crop else " (stretching distorts all alike)"),
        f"data.channels = {p.data.channels}: "
        + ("a sampled file is in colour" if colour else "every sampled file is grayscale"),
        f"model.encoder = {p.model.encoder}: "
        + (
            "ResNet-18 (CIFAR stem up to 64 px), head 512-128"
            if p.model.encoder != "small"
            else "the CPU-sized ResNet (widths 32-64-128); ResNet-18 is a GPU's work here"
        ),
        *_loss_lines(p, accelerator),
        _augment_line(p, side),
        f"evaluate.finetune: crop {ft.crop_scale[0]}-{ft.crop_scale[1]} and flip {ft.flip_p} "
        f"as pretraining's; epochs = {ft.epochs}, max_steps = {ft.max_steps}: {FULL_FT_EPOCHS} "
        "passes over the labelled split at 100 %, enough to match the linear probe there",
    ]


CPU_MEASURED = "in a 10-minute CPU budget on CIFAR-10 photos (benchmarks/README.md, budget_grid)"


def _loss_lines(p: Params, accelerator: bool) -> list[str]:
    """The batch, optimizer and temperature lines: the paper's on an accelerator, the measured
    CPU recipe's on a CPU; a batch below the recipe's is the folder's size (8 steps an epoch)."""
    pre = p.pretrain
    batch = (
        f"pretrain.batch_size = {pre.batch_size}, optimizer = {pre.optimizer}, lr = {pre.lr} x "
        "batch/256: "
    )
    if pre.optimizer == "lars":
        batch += "LARS at the paper's rate for its large batches"
    elif accelerator:
        batch += "Nesterov SGD: LARS is for the paper's large batches, this folder is small"
    else:
        batch += "Nesterov SGD beat LARS, and batch 128 beat 256 and 512, " + CPU_MEASURED
    if not accelerator and pre.batch_size < CPU_BATCH:
        batch += f" (here {pre.batch_size}: the folder is small, 8 steps an epoch at least)"
    temperature = f"pretrain.temperature = {pre.temperature}: " + (
        "the paper's CIFAR-10 setting"
        if accelerator
        else f"beat the paper's CIFAR-10 {TEMPERATURE} " + CPU_MEASURED
    )
    return [batch, temperature]


def _augment_line(p: Params, side: int) -> str:
    aug = p.pretrain.augment
    if side < CROP_MIN_SIDE:
        crop = f"; crop from {SMALL_CROP[0]}: at {side} px the paper's 0.08 leaves a few pixels"
    elif aug.crop_scale == CPU_CROP:
        crop = f"; crop from {CPU_CROP[0]}, not the paper's 0.08: it scored higher " + CPU_MEASURED
    else:
        crop = ""
    return (
        f"pretrain.augment: the paper's kinds (crop {aug.crop_scale[0]}-{aug.crop_scale[1]}, flip "
        f"{aug.flip_p}, jitter {aug.jitter_strength} p {aug.jitter_p}, grayscale "
        f"{aug.grayscale_p}, blur p {aug.blur_p} "
        + (
            f"above {aug.blur_min_size - 1} px: off here)"
            if side < aug.blur_min_size
            else f"above {aug.blur_min_size - 1} px: on)"
        )
        + (
            f"; jitter {aug.jitter_strength}: the paper's CIFAR-10 strength at {side} px (B.9)"
            if side <= CIFAR_JITTER_SIDE
            else ""
        )
        + crop
        + "; set flip_p 0 for images that are not mirror-symmetric (text, digits)"
    )


@dataclass(frozen=True)
class Speed:
    """What `tasks.init_timing` measured, in seconds per image."""

    pretrain_s: float  # per source image of a pretraining step (2 views, forward + backward)
    inference_s: float  # per image of frozen-encoder inference
    accelerator: bool


def _evaluation_s(ev: EvaluateConfig, sp: Split, side: int, channels: int, speed: Speed) -> float:
    """One evaluate (or transfer) stage: features of SimCLR and random init, fine-tuning of
    both at each fraction (one view a step: half a pretraining image) and their test
    predictions, the probes (scaled from benchmarks/README.md by images, raw-pixel dimensions
    and, on a CPU, this machine's speed against that one's), figures."""
    t_pre, t_inf = speed.pretrain_s, speed.inference_s
    features = 2 * (sp.n_train + sp.n_test) * t_inf
    tune = 0.0
    for fraction in ev.fractions if ev.finetune.epochs else ():
        labelled = sum(per_class_count(n, fraction) for n in sp.train)
        ft = ev.finetune
        batch, steps = finetune_steps(
            labelled,
            epochs=ft.epochs,
            min_steps=ft.min_steps,
            max_steps=ft.max_steps,
            batch_size=ft.batch_size,
        )
        tune += ev.finetune.seeds * 2 * (batch * steps * t_pre * FINETUNE_VIEW + sp.n_test * t_inf)
    ref = PROBE_REF_INFERENCE_S * (side / 32) ** 2
    slower = 1.0 if speed.accelerator else max(1.0, t_inf / ref)
    dims = side * side * channels / 3072
    probes = PROBE_S * sp.n_train / 10_000 * dims * slower * ev.seeds / 2
    return STAGE_START_S + features + tune + probes + FIGURES_S


def _prepare_s(files: int, pixels: float) -> float:
    rate = DECODE_PER_S * min(1.0, 224 * 224 / pixels)  # decoding cost follows source pixels
    return STAGE_START_S + files / rate


def _embedded_split(name: str) -> Split:
    n, classes, test = EMBEDDED[name]
    held = per_class_count(n // classes, test, spare=1)
    return Split([n // classes - held] * classes, [held] * classes)


def estimate(
    p: Params, sp: Split, files: int, pixels: float, speed: Speed, epochs: int
) -> dict[str, float]:
    """Seconds of each part of `simclr run` with params `p` (its replicas and transfer sets)
    and `epochs` pretraining epochs."""
    side, channels, r = p.data.image_size, p.data.channels or 3, len(p.replicas)
    steps_images = sp.n_train // p.pretrain.batch_size * p.pretrain.batch_size
    monitors = min(epochs, MONITORS + 1) * (sp.n_train + sp.n_test) * speed.inference_s
    pretrain = STAGE_START_S + epochs * steps_images * speed.pretrain_s + monitors
    transfers = sum(
        _evaluation_s(p.evaluate, _embedded_split(t), side, channels, speed)
        for t in p.transfer.datasets
    )
    rows = sp.n_train + sp.n_test + sum(EMBEDDED[t][0] for t in p.transfer.datasets)
    return {
        "start": SERVER_S,
        "prepare": _prepare_s(files, pixels)
        + sum(_prepare_s(EMBEDDED[t][0], 1) for t in p.transfer.datasets),
        "validate": VALIDATE_S + rows * VALIDATE_PER_ROW_S,
        "pretrain": r * pretrain,
        "evaluate": r * _evaluation_s(p.evaluate, sp, side, channels, speed),
        "transfer": r * transfers,
        "summarize and report": 2 * STAGE_START_S + REPORT_S,
    }


def _with(p: Params, replicas: int, epochs: int, transfers: tuple[str, ...]) -> Params:
    raw = p.model_dump()
    raw["replicas"] = tuple(range(replicas))
    warmup = round(epochs * WARMUP_SHARE)
    knn_every = max(1, epochs // MONITORS)
    raw["pretrain"].update(epochs=epochs, warmup_epochs=warmup, knn_every=knn_every)
    raw["transfer"] = {"datasets": transfers}
    raw["datasets"] = {**raw["datasets"], **{t: {"source": t} for t in transfers}}
    return Params.model_validate(raw)


def _validate_thresholds(p: Params, sp: Split) -> tuple[Params, list[str]]:
    """validate's thresholds, loosened where the folder as surveyed would fail them (the user
    chose this data; a check it fails by design would only stop the run), each change said."""
    v, lines = p.validate, []
    per_class = min(min(sp.train), min(sp.test))
    ratio = max(max(c) / min(c) for c in (sp.train, sp.test))
    update = {}
    if per_class < v.min_per_class:
        update["min_per_class"] = per_class
        lines.append(
            f"validate.min_per_class = {per_class}: the smallest class has {per_class} "
            f"image(s) in a split (default {v.min_per_class})"
        )
    if ratio > v.max_imbalance:
        update["max_imbalance"] = float(math.ceil(ratio))
        lines.append(
            f"validate.max_imbalance = {math.ceil(ratio)}: the classes are {ratio:.1f}:1 "
            f"(default {v.max_imbalance:g}); balance them to keep the check strict"
        )
    if sp.n_train + sp.n_test < v.min_rows:
        update["min_rows"] = sp.n_train + sp.n_test
        lines.append(f"validate.min_rows = {sp.n_train + sp.n_test}: the folder's images")
    raw = p.model_dump()
    raw["validate"] = ValidateConfig.model_validate({**v.model_dump(), **update}).model_dump()
    return Params.model_validate(raw), lines


@dataclass(frozen=True)
class Data:
    """What the cost model needs of the folders."""

    split: Split
    files: int  # image files prepare decodes
    pixels: float  # a typical source image's pixels (decoding cost)


def _epochs(p: Params, data: Data, speed: Speed, budget_s: float) -> tuple[int, float]:
    """Pretraining epochs that fit `budget_s` with `p`'s replicas and transfer sets, and the
    seconds of everything else."""
    probe = MONITORS + 1  # enough epochs that the kNN monitors are all counted
    total = sum(estimate(p, data.split, data.files, data.pixels, speed, probe).values())
    one_epoch = sum(estimate(p, data.split, data.files, data.pixels, speed, probe + 1).values())
    per_epoch = one_epoch - total
    fixed = total - probe * per_epoch
    return math.floor((budget_s - fixed) / per_epoch), fixed


def finish(p: Params, data: Data, speed: Speed, minutes: float, device: str) -> Recipe:
    """Replicas, epochs, warm-up, kNN monitor and transfer sets for a `minutes` run: 3 replicas
    with at least MIN_EPOCHS each if that fits, else 2, else 1; grayscale folders transfer to
    the embedded (grayscale) sets while that does not cost a replica."""
    budget = minutes * 60 * SAFETY
    gray = (tuple(EMBEDDED), ()) if p.data.channels == 1 else ((),)
    for replicas in (3, 2, 1):
        for transfers in gray:
            trial = _with(p, replicas, 1, transfers)
            epochs, _ = _epochs(trial, data, speed, budget)
            if epochs >= (MIN_EPOCHS if replicas > 1 else 1):
                final = _with(p, replicas, min(epochs, MAX_EPOCHS), transfers)
                final, checks = _validate_thresholds(final, data.split)
                seconds = estimate(
                    final, data.split, data.files, data.pixels, speed, final.pretrain.epochs
                )
                lines = _plan_lines(final, data, speed, minutes, epochs, seconds)
                return Recipe(final, lines + checks, seconds)
    _, fixed = _epochs(_with(p, 1, 1, ()), data, speed, budget)
    one = data.split.n_train * speed.pretrain_s
    need = math.ceil((fixed + one) / SAFETY / 60)
    raise PipelineError(
        f"--minutes {minutes:g} is too short for this folder on this {device}: preparing, "
        f"validating, evaluating and reporting alone take about {fixed / 60:.1f} minutes and "
        f"one epoch {one / 60:.1f}; give --minutes {need} or more, or use fewer images"
    )


def _plan_lines(
    p: Params, data: Data, speed: Speed, minutes: float, fitted: int, seconds: dict
) -> list[str]:
    pre, r = p.pretrain, len(p.replicas)
    epoch_s = data.split.n_train * speed.pretrain_s
    capped = f", capped at the paper's longest ({MAX_EPOCHS})" if fitted > MAX_EPOCHS else ""
    tests = {
        3: "3 pretraining seeds: the test over replicas has 2 degrees of freedom",
        2: f"3 would leave under {MIN_EPOCHS} epochs each; with 2 the test over replicas has 1 "
        "degree of freedom (a wide confidence interval)",
        1: f"2 would leave under {MIN_EPOCHS} epochs each; with 1 there is no test over "
        "replicas: p-values are that replica's own and leave the pretraining's variation out",
    }
    transfer = (
        f"transfer.datasets = [{', '.join(p.transfer.datasets)}]: embedded sets, grayscale as "
        "this folder"
        if p.transfer.datasets
        else "transfer.datasets = []: the embedded sets (digits, mnist, faces, textures) are "
        + (
            "grayscale, this folder is RGB"
            if p.data.channels == 3
            else "grayscale too, but each costs an evaluation per replica the budget lacks"
        )
    )
    total = sum(seconds.values())
    parts = ", ".join(f"{k} {v / 60:.1f}" for k, v in seconds.items())
    return [
        f"replicas = {list(p.replicas)}: {tests[r]}",
        f"pretrain.epochs = {pre.epochs}{capped}, warmup_epochs = {pre.warmup_epochs} (10 %), "
        f"knn_every = {pre.knn_every}: what fits {SAFETY:.0%} of {minutes:g} minutes with {r} "
        f"replica(s); an epoch of {data.split.n_train:,} images takes about {epoch_s:.0f} s",
        transfer,
        f"estimated run: {total / 60:.1f} of {minutes:g} minutes ({parts})",
    ]


def folder_data(train: Folder, test: Folder | None, test_fraction: float) -> Data:
    sizes = sorted(w * h for w, h in train.sizes)
    files = train.images + (test.images if test is not None else 0)
    return Data(split(train, test, test_fraction), files, float(sizes[len(sizes) // 2]))


def _larger(train, test, device, sides_, data, speed, minutes, measure):
    """The recipe at the larger side if it still gets PREFER_EPOCHS with 3 replicas: first
    estimated from the base side's speed scaled by pixels, then measured."""
    base, largest = sides_
    p, lines = draft(train, test, device, largest, dataset_name(train.root))
    scale = (largest / base) ** 2
    guess = Speed(speed.pretrain_s * scale, speed.inference_s * scale, speed.accelerator)
    for attempt in (guess, None):
        if attempt is None:
            timing = measure(p)
            attempt = Speed(timing.pretrain_s, timing.inference_s, speed.accelerator)
        try:
            recipe = finish(p, data, attempt, minutes, device)
        except PipelineError:
            return None
        if recipe.params.pretrain.epochs < PREFER_EPOCHS or len(recipe.params.replicas) < 3:
            return None
    recipe.lines[:0] = lines
    recipe.timing = timing
    return recipe


def choose(train: Folder, test: Folder | None, device: str, minutes: float, measure) -> Recipe:
    """The whole recipe: drafted at the base side, `measure`d (a Params -> Timing), sized to
    `minutes`; the larger side instead where it is affordable (`_larger`)."""
    sides_ = sides(train, device != "cpu")
    data = folder_data(train, test, DataConfig().test_fraction)
    p, lines = draft(train, test, device, sides_[0], dataset_name(train.root))
    timing = measure(p)
    speed = Speed(timing.pretrain_s, timing.inference_s, device != "cpu")
    if sides_[1] > sides_[0]:
        larger = _larger(train, test, device, sides_, data, speed, minutes, measure)
        if larger is not None:
            return larger
        lines[0] += (
            f"; {sides_[1]} px would get under {PREFER_EPOCHS} epochs x 3 replicas in the "
            "budget: more epochs beat more pixels"
        )
    recipe = finish(p, data, speed, minutes, device)
    recipe.lines[:0] = lines
    recipe.timing = timing
    return recipe


def summary(recipe: Recipe, train: Folder, test: Folder | None) -> str:
    """What init looked at, what it measured, and each choice with its reason."""
    p, t = recipe.params, recipe.timing

    def folder(f: Folder) -> str:
        low, high = min(f.counts), max(f.counts)
        sizes = f"{low:,} a class" if low == high else f"{low:,}-{high:,} a class"
        return f"{f.root} ({len(f.classes)} classes, {f.images:,} images, {sizes})"

    lines = [f"simclr init: {folder(train)}" + (f", test {folder(test)}" if test else "")]
    if test is None:
        lines.append(f"no test folder: a seeded {p.data.test_fraction:.0%} split per class")
    lines.append(
        f"measured on this {t.device} ({t.precision}): pretraining {1 / t.pretrain_s:,.0f} "
        f"images/s ({p.model.encoder}, {p.data.image_size} px, batch {p.pretrain.batch_size}, "
        f"median of {t.steps} timed epochs of 4 steps), inference "
        f"{1 / t.inference_s:,.0f} images/s, in {t.seconds:.0f} s"
    )
    return "\n".join(lines + recipe.lines)

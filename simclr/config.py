"""params.yaml as typed, validated config.

Every key is checked: an unknown key, a wrong type or a value out of range raises PipelineError
naming the key and the allowed values, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

from ruamel.yaml import YAML, YAMLError

from simclr.data.embedded import SOURCES
from simclr.errors import PipelineError

RESIZE_POLICIES = ("stretch", "crop")
ARCHIVES = ("cifar10", "cifar100", "stl10")  # torchvision's formats, read from a local root
ALL_SOURCES = (*SOURCES, *ARCHIVES, "imagefolder", "npz")


@dataclass(frozen=True)
class DataConfig:
    """Defaults for every dataset; a dataset's own entry in `datasets` may override each."""

    image_size: int = 16  # every image is resized to this square side
    resize: str = "stretch"  # stretch: to a square; crop: shorter side to size, centre crop
    channels: int | None = None  # 1 = grayscale, 3 = RGB (converted); null = the source's own
    test_fraction: float = 0.2  # seeded stratified split, for sources without a test split
    fraction: float = 1.0  # keep this stratified fraction of every split
    max_per_class: int | None = None  # cap images per class and split (tiny runs); null = all
    skip_corrupt: bool = False  # drop files that cannot be decoded (and record them)
    workers: int | None = None  # decoding threads; null = one per CPU

    def check(self, key: str) -> None:
        _require(self.image_size >= 4, f"{key}.image_size", "an integer >= 4")
        _choice(self.resize, f"{key}.resize", RESIZE_POLICIES)
        if self.channels is not None:
            _require(self.channels in (1, 3), f"{key}.channels", "null, 1 or 3")
        _require(0 < self.test_fraction < 1, f"{key}.test_fraction", "a number in (0, 1)")
        _require(0 < self.fraction <= 1, f"{key}.fraction", "a number in (0, 1]")
        if self.max_per_class is not None:
            _require(self.max_per_class >= 1, f"{key}.max_per_class", "null or an integer >= 1")
        if self.workers is not None:
            _require(self.workers >= 1, f"{key}.workers", "null or an integer >= 1")


@dataclass(frozen=True)
class DatasetConfig:
    source: str  # an embedded set, cifar10/cifar100/stl10 (root), imagefolder (root), npz (path)
    root: str | None = None  # cifar*/stl10: torchvision's folder; imagefolder: <root>/<class>/
    test_root: str | None = None  # imagefolder: a separate test folder; null = seeded split
    path: str | None = None  # npz: the .npz file
    download: bool = False  # cifar*/stl10: download into root when missing (needs network)
    unlabeled: bool = False  # stl10: also prepare the 100k unlabelled images (pretraining)
    # Overrides of the `data` defaults for this dataset; null = as in `data`.
    image_size: int | None = None
    resize: str | None = None
    channels: int | None = None
    test_fraction: float | None = None
    fraction: float | None = None
    max_per_class: int | None = None
    skip_corrupt: bool | None = None

    def check(self, key: str) -> None:
        if self.source not in ALL_SOURCES:
            raise PipelineError(
                f"params.yaml: {key}.source = {self.source!r} is not a known dataset; "
                f"allowed: {', '.join(ALL_SOURCES)}"
            )
        needs = {"imagefolder": "root", "npz": "path", **dict.fromkeys(ARCHIVES, "root")}
        wanted = needs.get(self.source)
        if wanted and not getattr(self, wanted):
            raise PipelineError(
                f"params.yaml: {key}.{wanted} is required for source {self.source}; "
                f"set it to the {'folder' if wanted == 'root' else '.npz file'} to read"
            )
        for name, allowed in (
            ("root", ("imagefolder", *ARCHIVES)),
            ("test_root", ("imagefolder",)),
            ("path", ("npz",)),
            ("download", ARCHIVES),
            ("unlabeled", ("stl10",)),
        ):
            if getattr(self, name) and self.source not in allowed:
                raise PipelineError(
                    f"params.yaml: {key}.{name} does not apply to source {self.source}; "
                    f"it is for {', '.join(allowed)}"
                )

    def options(self, defaults: DataConfig) -> DataConfig:
        """The `data` defaults with this dataset's overrides applied."""
        names = {f.name for f in dataclasses.fields(DataConfig)}
        overrides = {
            n: getattr(self, n) for n in names if hasattr(self, n) and getattr(self, n) is not None
        }
        return dataclasses.replace(defaults, **overrides)


@dataclass(frozen=True)
class ValidateConfig:
    min_rows: int = 20  # per dataset, all splits
    max_rows: int = 10_000_000
    min_per_class: int = 2  # images of every class in each labelled split
    max_imbalance: float = 10.0  # largest class / smallest class, in each labelled split
    min_pixel_std: float = 1.0  # images flatter than this (pixel std, 0..255) are near-blank

    def check(self, key: str) -> None:
        ok = 0 <= self.min_rows <= self.max_rows
        _require(ok, f"{key}.min_rows", "0 <= min_rows <= max_rows")
        _require(self.min_per_class >= 1, f"{key}.min_per_class", "an integer >= 1")
        _require(self.max_imbalance >= 1, f"{key}.max_imbalance", "a number >= 1")
        _require(self.min_pixel_std >= 0, f"{key}.min_pixel_std", "a number >= 0")


ENCODERS = ("small", "resnet18", "resnet34", "resnet50")
STEMS = ("auto", "cifar", "imagenet")
HEADS = ("v1", "v2")


@dataclass(frozen=True)
class ModelConfig:
    encoder: str = "small"  # small (widths/blocks below) or a torchvision ResNet
    width: int = 1  # channel multiplier of the torchvision ResNets (the paper's 1x, 2x, 4x)
    stem: str = "auto"  # auto: CIFAR stem (3x3 conv, no max-pool) for images <= 64 px
    widths: tuple[int, ...] = (32, 64, 128)  # small: channels per stage; h has widths[-1] dims
    blocks: tuple[int, ...] = (1, 1, 1)  # small: BasicBlocks per stage
    head: str = "v1"  # projection head: v1 = 2-layer MLP, v2 = 3-layer MLP, BN on each layer
    proj_hidden_dim: int = 128
    proj_dim: int = 64

    def check(self, key: str) -> None:
        _choice(self.encoder, f"{key}.encoder", ENCODERS)
        _choice(self.stem, f"{key}.stem", STEMS)
        _choice(self.head, f"{key}.head", HEADS)
        _require(1 <= self.width <= 8, f"{key}.width", "an integer in 1..8")
        _require(len(self.widths) == len(self.blocks) > 0, f"{key}.widths", "as many as blocks")
        _require(min(self.widths) > 0 and min(self.blocks) > 0, f"{key}.widths", "positive ints")
        _require(self.proj_hidden_dim > 0, f"{key}.proj_hidden_dim", "an integer > 0")
        _require(self.proj_dim > 0, f"{key}.proj_dim", "an integer > 0")


@dataclass(frozen=True)
class AugmentConfig:
    crop_scale: tuple[float, float] = (0.08, 1.0)  # area fraction of random resized crop
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip_p: float = 0.5
    jitter_strength: float = 1.0  # s: brightness/contrast/saturation 0.8s, hue 0.2s
    jitter_p: float = 0.8
    grayscale_p: float = 0.2
    blur_p: float = 0.5
    blur_min_size: int = 33  # blur only images at least this large (the paper: off at <= 32)

    def check(self, key: str) -> None:
        lo, hi = self.crop_scale
        _require(0 < lo <= hi <= 1, f"{key}.crop_scale", "[low, high] with 0 < low <= high <= 1")
        _require(0 < self.crop_ratio[0] <= self.crop_ratio[1], f"{key}.crop_ratio", "[lo, hi] > 0")
        for name in ("flip_p", "jitter_p", "grayscale_p", "blur_p"):
            _require(0 <= getattr(self, name) <= 1, f"{key}.{name}", "a probability in [0, 1]")
        _require(self.jitter_strength >= 0, f"{key}.jitter_strength", "a number >= 0")


@dataclass(frozen=True)
class DistributedConfig:
    """Processes for pretraining, started by torchrun: nnodes machines x nproc_per_node each
    (one per GPU). pretrain.batch_size is the global batch, split evenly across them."""

    nnodes: int = 1
    nproc_per_node: int = 1
    master_addr: str = "127.0.0.1"  # node 0, where the stage runs (nnodes > 1)
    master_port: int = 29500

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node

    def check(self, key: str) -> None:
        _require(self.nnodes >= 1, f"{key}.nnodes", "an integer >= 1")
        _require(self.nproc_per_node >= 1, f"{key}.nproc_per_node", "an integer >= 1")
        _require(0 < self.master_port < 65536, f"{key}.master_port", "a port in 1..65535")
        _require(bool(self.master_addr), f"{key}.master_addr", "a host name or address")


OPTIMIZERS = ("lars", "sgd", "adamw")
LR_SCALINGS = ("linear", "sqrt")
DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass(frozen=True)
class PretrainConfig:
    dataset: str = "digits"
    epochs: int = 30
    batch_size: int = 256
    optimizer: str = "lars"
    lr: float = 0.3  # base rate, scaled by the batch as lr_scaling says
    lr_scaling: str = "linear"  # linear: lr * batch / 256; sqrt: lr * sqrt(batch)
    momentum: float = 0.9
    weight_decay: float = 1e-6
    trust_coefficient: float = 0.001  # LARS eta
    warmup_epochs: int = 3
    temperature: float = 0.5
    device: str = "auto"
    precision: str = "auto"  # network autocast: auto (bf16 where supported, else fp32), fp32,
    # bf16 or fp16 (GPU); NT-Xent is computed in fp32 whatever the choice
    channels_last: bool = False
    compile: bool = False  # torch.compile the encoder and head
    threads: int | None = None  # torch CPU threads; null = torch's default
    loader_workers: int = 0  # processes reading batches from the memory-mapped images
    knn_every: int = 0  # kNN monitor on the labelled split every K epochs (and the last); 0 = off
    knn_k: int = 200
    knn_temperature: float = 0.1
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)

    def check(self, key: str) -> None:
        _require(self.epochs >= 1, f"{key}.epochs", "an integer >= 1")
        _require(self.batch_size >= 2, f"{key}.batch_size", "an integer >= 2")
        self.distributed.check(f"{key}.distributed")
        size = self.distributed.world_size
        ok = self.batch_size % size == 0
        _require(ok, f"{key}.batch_size", f"a multiple of the {size} processes (nnodes x nproc)")
        _choice(self.optimizer, f"{key}.optimizer", OPTIMIZERS)
        _choice(self.lr_scaling, f"{key}.lr_scaling", LR_SCALINGS)
        _choice(self.device, f"{key}.device", DEVICES)
        _choice(self.precision, f"{key}.precision", PRECISIONS)
        ok = math.isfinite(self.trust_coefficient) and self.trust_coefficient > 0
        _require(ok, f"{key}.trust_coefficient", "a finite number > 0")
        _require(self.loader_workers >= 0, f"{key}.loader_workers", "an integer >= 0")
        _require(self.knn_every >= 0, f"{key}.knn_every", "an integer >= 0 (0 = off)")
        _require(self.knn_k >= 1, f"{key}.knn_k", "an integer >= 1")
        ok = math.isfinite(self.knn_temperature) and self.knn_temperature > 0
        _require(ok, f"{key}.knn_temperature", "a finite number > 0")
        _require(math.isfinite(self.lr) and self.lr > 0, f"{key}.lr", "a finite number > 0")
        ok = math.isfinite(self.temperature) and self.temperature > 0
        _require(ok, f"{key}.temperature", "a finite number > 0")
        _require(0 < self.momentum < 1, f"{key}.momentum", "a number in (0, 1)")
        _require(self.weight_decay >= 0, f"{key}.weight_decay", "a number >= 0")
        if self.threads is not None:
            _require(self.threads >= 1, f"{key}.threads", "null or an integer >= 1")
        _require(0 <= self.warmup_epochs <= self.epochs, f"{key}.warmup_epochs", "0..epochs")
        self.augment.check(f"{key}.augment")


@dataclass(frozen=True)
class FinetuneConfig:
    """Semi-supervised fine-tuning as the paper: encoder + linear head on the labelled subset,
    random resized crop and flip only, Nesterov SGD, cosine decay, no warmup."""

    epochs: int = 20  # 0 = no fine-tuning
    min_steps: int = 50  # tiny subsets (1 % of a small set) still get this many steps
    max_steps: int = 200  # large subsets stop here; 0 = no cap
    batch_size: int = 64
    lr: float = 0.2  # the rate used as given (not rescaled by the batch)
    momentum: float = 0.9
    weight_decay: float = 0.0  # the paper fine-tunes without regularization
    crop_scale: tuple[float, float] = (0.3, 1.0)
    flip_p: float = 0.0

    def check(self, key: str) -> None:
        _require(self.epochs >= 0, f"{key}.epochs", "an integer >= 0 (0 = off)")
        _require(self.min_steps >= 0, f"{key}.min_steps", "an integer >= 0")
        _require(self.max_steps >= 0, f"{key}.max_steps", "an integer >= 0 (0 = no cap)")
        _require(self.batch_size >= 2, f"{key}.batch_size", "an integer >= 2")
        _require(math.isfinite(self.lr) and self.lr > 0, f"{key}.lr", "a finite number > 0")
        _require(0 <= self.momentum < 1, f"{key}.momentum", "a number in [0, 1)")
        _require(self.weight_decay >= 0, f"{key}.weight_decay", "a number >= 0")
        lo, hi = self.crop_scale
        _require(0 < lo <= hi <= 1, f"{key}.crop_scale", "[low, high] with 0 < low <= high <= 1")
        _require(0 <= self.flip_p <= 1, f"{key}.flip_p", "a probability in [0, 1]")


@dataclass(frozen=True)
class EvaluateConfig:
    fractions: tuple[float, ...] = (0.01, 0.1, 1.0)  # of each class in the training split
    seeds: int = 5  # label subsets per fraction below 1.0
    val_fraction: float = 0.2  # of the labelled subset, held out to choose the L2 strength
    C: tuple[float, ...] = (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)  # inverse L2 strengths tried
    max_iter: int = 1000  # L-BFGS iterations per fit
    batch_size: int = 512  # feature extraction
    knn_k: int = 20  # neighbours that vote (DINO's choice; 200 is all of a small subset)
    knn_temperature: float = 0.1
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)

    def check(self, key: str) -> None:
        ok = all(0 < f <= 1 for f in self.fractions) and len(self.fractions) > 0
        _require(ok, f"{key}.fractions", "a list of numbers in (0, 1]")
        _require(self.seeds >= 1, f"{key}.seeds", "an integer >= 1")
        _require(len(set(self.fractions)) == len(self.fractions), f"{key}.fractions", "no repeats")
        _require(0 < self.val_fraction < 1, f"{key}.val_fraction", "a number in (0, 1)")
        ok = len(self.C) > 0 and all(math.isfinite(c) and c > 0 for c in self.C)
        _require(ok, f"{key}.C", "a list of finite numbers > 0")
        _require(self.max_iter >= 1, f"{key}.max_iter", "an integer >= 1")
        _require(self.batch_size >= 1, f"{key}.batch_size", "an integer >= 1")
        _require(self.knn_k >= 1, f"{key}.knn_k", "an integer >= 1")
        ok = math.isfinite(self.knn_temperature) and self.knn_temperature > 0
        _require(ok, f"{key}.knn_temperature", "a finite number > 0")
        self.finetune.check(f"{key}.finetune")


@dataclass(frozen=True)
class TransferConfig:
    datasets: tuple[str, ...] = ("mnist", "faces", "textures")


@dataclass(frozen=True)
class Params:
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    datasets: dict[str, DatasetConfig] = field(default_factory=dict)
    validate: ValidateConfig = field(default_factory=ValidateConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    transfer: TransferConfig = field(default_factory=TransferConfig)

    def check(self) -> None:
        _require(0 <= self.seed < 2**32, "seed", "an integer in [0, 2**32)")
        self.data.check("data")
        _require(len(self.datasets) > 0, "datasets", "at least one dataset")
        for name, ds in self.datasets.items():
            # The name becomes a folder (data/prepared/<name>) and part of DVC stage names.
            if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
                raise PipelineError(
                    f"params.yaml: datasets.{name}: a dataset name may hold letters, digits, "
                    "'_' and '-' only (it names a folder and a DVC stage)"
                )
            ds.check(f"datasets.{name}")
            ds.options(self.data).check(f"datasets.{name}")
        self.validate.check("validate")
        self.model.check("model")
        self.pretrain.check("pretrain")
        self.evaluate.check("evaluate")
        _choice(self.pretrain.dataset, "pretrain.dataset", tuple(self.datasets))
        for name in self.transfer.datasets:
            _choice(name, "transfer.datasets", tuple(self.datasets))
        unique = len(set(self.transfer.datasets)) == len(self.transfer.datasets)
        _require(unique, "transfer.datasets", "dataset names without repeats")


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read, type-check and validate params.yaml."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found; run from the repository root")
    try:
        # ruamel (YAML 1.2), as DVC reads and writes params: `-S lr=1e-4` stays a number.
        raw = YAML(typ="safe", pure=True).load(path.read_text())
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or "syntax error"
        raise PipelineError(f"{path}: not valid YAML{where}: {problem}; fix the syntax") from None
    params = from_dict(Params, raw if raw is not None else {}, "")
    try:
        params.check()
    except _Invalid as e:
        raise PipelineError(f"{e}; got {_value_at(params, e.key)!r}") from None
    return params


def _value_at(params: Params, key: str):
    """The value of `key` ("pretrain.augment.crop_scale") in `params`; a dataset's option that
    its entry does not override is the one in `data`."""
    value = params
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else getattr(value, part, None)
    parts = key.split(".")
    if value is None and parts[0] == "datasets" and len(parts) == 3:
        value = getattr(params.data, parts[2], None)
    return _plain(value)


def to_dict(obj) -> dict:
    """A config as plain JSON-able data (tuples become lists)."""
    return _plain(dataclasses.asdict(obj))


def _plain(x):
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    return x


def from_dict(cls, raw, key: str):
    where = key or "top level"
    if not isinstance(raw, dict):
        raise PipelineError(f"params.yaml: {where} must be a mapping, got {type(raw).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - fields)
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise PipelineError(
            f"params.yaml: unknown key {name!r}; allowed: {', '.join(sorted(fields))}"
        )
    required = [
        f.name
        for f in dataclasses.fields(cls)
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    ]
    missing = [n for n in required if n not in raw]
    if missing:
        raise PipelineError(f"params.yaml: {key}.{missing[0]} is required; set it")
    values = {n: _coerce(hints[n], raw[n], f"{key}.{n}" if key else n) for n in raw}
    return cls(**values)


def _coerce(tp, value, key: str):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _coerce(inner, value, key)
    if origin is dict:
        if not isinstance(value, dict):
            raise PipelineError(f"params.yaml: {key} must be a mapping of name to settings")
        return {str(k): _coerce(args[1], v, f"{key}.{k}") for k, v in value.items()}
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise PipelineError(f"params.yaml: {key} must be a list, got {value!r}")
        inner = args[0]
        if len(args) == 2 and args[1] is not Ellipsis and len(value) != 2:
            raise PipelineError(f"params.yaml: {key} must be a list of 2, got {value!r}")
        return tuple(_coerce(inner, v, f"{key}[{i}]") for i, v in enumerate(value))
    if tp is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if tp in (int, str, bool) and type(value) is tp:
        return value
    raise PipelineError(f"params.yaml: {key} must be {tp.__name__}, got {value!r}")


class _Invalid(PipelineError):
    """A value out of range; load_params adds the value to the message."""

    def __init__(self, key: str, allowed: str):
        super().__init__(f"params.yaml: invalid value for {key}; allowed: {allowed}")
        self.key = key


def _require(ok: bool, key: str, allowed: str) -> None:
    if not ok:
        raise _Invalid(key, allowed)


def _choice(value: str, key: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise PipelineError(
            f"params.yaml: {key} = {value!r} is not one of the allowed values: {', '.join(allowed)}"
        )

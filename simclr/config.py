"""params.yaml as typed, validated config (pydantic models).

The models are the one source of every key's description. Their defaults are the library's
(simclr/defaults.py, which the library's keyword arguments read too): the paper's recipe
(Chen et al. 2020, "A Simple Framework for Contrastive Learning of Visual Representations",
section 3 and appendices A-B): its augmentations, LARS at 0.3 x
batch/256 with weight decay 1e-6 and a 10-epoch warm-up, a 2-layer projection head to 128
dimensions, temperature 0.5 and 32 px images as its CIFAR-10 setting, fine-tuning with crop and
flip. What sets the cost rather than the method is sized for a CPU instead of the paper's 128
TPU cores: the `small` encoder (the paper: ResNet-50), batch 256 (4096), 100 epochs (up to
1000); `simclr init` sizes these for a folder and a machine. params.yaml spells every key out
with its description as comment, and says why where it departs from these defaults
(tests/test_config.py checks both).

Every key is checked: an unknown key, a wrong type, a value out of range or a broken rule
between keys raises PipelineError in one line naming the key, the value and what is allowed,
so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import re
import warnings
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from simclr import defaults as D
from simclr.config_errors import fail, one_line, read_yaml, relay, rule, show
from simclr.data.embedded import SOURCES
from simclr.errors import PipelineError

ARCHIVES = ("cifar10", "cifar100", "stl10")  # torchvision's formats, read from a local root
ALL_SOURCES = (*SOURCES, *ARCHIVES, "imagefolder", "npz")

# Strict scalars: YAML's `true` is not an integer, "3" is not a number; an integer is a number
# (`dvc exp run -S pretrain.lr=1`). Lists stay lax, so YAML lists become tuples.
Int = Annotated[int, Strict()]
Float = Annotated[float, Strict()]
Bool = Annotated[bool, Strict()]
Str = Annotated[str, Strict()]
Prob = Annotated[Float, Field(ge=0, le=1)]
Share = Annotated[Float, Field(gt=0, le=1)]
FinitePositive = Annotated[Float, Field(gt=0, allow_inf_nan=False)]


def _ordered(pair: tuple) -> tuple:
    if pair[0] > pair[1]:
        raise fail((), pair, "[low, high] with low <= high")
    return pair


def _unique(items: tuple) -> tuple:
    if len(set(items)) != len(items):
        raise fail((), items, "a list without repeats")
    return items


def _exact_int(value):
    if type(value) is not int:  # a Literal of ints would take True for 1 and 1.0 for 1
        raise PydanticCustomError("int_type", "Input should be an integer")
    return value


Scale = Annotated[tuple[Share, Share], AfterValidator(_ordered)]
Ratio = Annotated[tuple[FinitePositive, FinitePositive], AfterValidator(_ordered)]
Shares = Annotated[tuple[Share, ...], Field(min_length=1), AfterValidator(_unique)]
Positives = Annotated[tuple[FinitePositive, ...], Field(min_length=1)]


# Upper bounds of the params that multiply memory (pixels per image, images per batch, channels,
# processes): far above any real setting (ImageNet on GPUs: 224 px, batch 4096, ResNet-50 4x,
# heads of 8192), low enough that a typo is refused in one line instead of filling the memory
# until the kernel kills the stage. epochs needs none (the schedule is computed step by step).
MAX_IMAGE_SIZE = 1024  # 3 MiB an RGB image; 20000 px would be 1.2 GB each
MAX_BATCH = 65_536  # the paper's largest is 8192
MAX_CHANNELS = 32_768  # widths and head dims; ResNet-50 8x has 16384
MAX_PROCESSES = 256  # decoding threads, loader processes, processes per machine
# kNN votes: a classifier with fewer labelled images than k lets all of them vote (a 1% label
# subset of the default run holds fewer than evaluate.knn_k), so without a bound a typo such as
# 10**20 would silently mean "every image votes"; the literature's monitor votes with 200.
MAX_NEIGHBOURS = 10_000


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class DataConfig(_Model):
    """Defaults for every dataset; a dataset's own entry in `datasets` may override each."""

    image_size: Int = Field(32, ge=4, le=MAX_IMAGE_SIZE)
    """square side every image is resized to"""
    resize: Literal["stretch", "crop"] = "stretch"
    """stretch to the square, or crop (shorter side, then centre crop)"""
    channels: Annotated[Literal[1, 3], BeforeValidator(_exact_int)] | None = None
    """1 = grayscale, 3 = RGB (converted); null = the source's (folders: RGB)"""
    test_fraction: Float = Field(0.2, gt=0, lt=1)
    """seeded stratified split where the source has no test split"""
    fraction: Share = 1.0
    """keep this stratified share of each class"""
    max_per_class: Int | None = Field(None, ge=1)
    """cap images per class (tiny runs); null = all"""
    skip_corrupt: Bool = False
    """true: drop undecodable files (listed in skipped.json) instead of failing"""
    workers: Int | None = Field(None, ge=1, le=MAX_PROCESSES)
    """image decoding threads; null = one per CPU"""


NEEDS = {"imagefolder": "root", "npz": "path", **dict.fromkeys(ARCHIVES, "root")}
APPLIES = {
    "root": ("imagefolder", *ARCHIVES),
    "test_root": ("imagefolder",),
    "path": ("npz",),
    "download": ARCHIVES,
    "unlabeled": ("stl10",),
}


class DatasetConfig(_Model):
    """One dataset: where its images come from, and its overrides of `data` (null = as in
    `data`; checked by data's rules once merged, in Params)."""

    source: Literal[ALL_SOURCES]
    """an embedded set, cifar10/cifar100/stl10 (root), imagefolder (root) or npz (path)"""
    root: Str | None = None
    """cifar*/stl10: torchvision's folder; imagefolder: <root>/<class>/"""
    test_root: Str | None = None
    """imagefolder: a separate test folder; null = a seeded split"""
    path: Str | None = None
    """npz: the .npz file"""
    download: Bool = False
    """cifar*/stl10: download into root when missing (needs network)"""
    unlabeled: Bool = False
    """stl10: also prepare the 100k unlabelled images (pretraining)"""
    image_size: Int | None = None
    resize: Str | None = None
    channels: Int | None = None
    test_fraction: Float | None = None
    fraction: Float | None = None
    max_per_class: Int | None = None
    skip_corrupt: Bool | None = None

    @model_validator(mode="after")
    def _source_keys(self) -> DatasetConfig:
        wanted = NEEDS.get(self.source)
        if wanted and not getattr(self, wanted):
            what = "folder" if wanted == "root" else ".npz file"
            todo = f"set it to the {what} to read"
            raise rule((wanted,), f" is required for source {self.source}; {todo}")
        for name, sources in APPLIES.items():
            if getattr(self, name) and self.source not in sources:
                raise rule(
                    (name,),
                    f" = {show(getattr(self, name))} does not apply to source {self.source}; "
                    f"it is for {', '.join(sources)}",
                )
        return self

    def options(self, defaults: DataConfig) -> DataConfig:
        """The `data` defaults with this dataset's overrides applied, checked by data's rules."""
        overrides = {n: getattr(self, n) for n in DataConfig.model_fields if hasattr(self, n)}
        merged = {k: v for k, v in overrides.items() if v is not None}
        return DataConfig.model_validate({**defaults.model_dump(), **merged})


class ValidateConfig(_Model):
    min_rows: Int = Field(20, ge=0)
    """images per dataset, all splits"""
    max_rows: Int = Field(10_000_000, ge=0)
    min_per_class: Int = Field(2, ge=1)
    """images of every class in each of train and test"""
    max_imbalance: Float = Field(10.0, ge=1, allow_inf_nan=False)
    """largest class / smallest class, in each split"""
    min_pixel_std: Float = Field(1.0, ge=0, allow_inf_nan=False)
    """pixel std (0..255) below which an image is near-blank"""

    @model_validator(mode="after")
    def _rows(self) -> ValidateConfig:
        if self.min_rows > self.max_rows:
            raise fail(("min_rows",), self.min_rows, f"at most max_rows ({self.max_rows})")
        return self


Widths = Annotated[
    tuple[Annotated[Int, Field(gt=0, le=MAX_CHANNELS)], ...], Field(min_length=1, max_length=8)
]
Blocks = Annotated[
    tuple[Annotated[Int, Field(gt=0, le=64)], ...], Field(min_length=1, max_length=8)
]


class ModelConfig(_Model):
    encoder: Literal["small", "resnet18", "resnet34", "resnet50"] = D.ENCODER
    """small (below), resnet18, resnet34 or resnet50 (torchvision)"""
    width: Int = Field(D.WIDTH, ge=1, le=8)
    """channel multiplier of the torchvision ResNets (1x, 2x, 4x)"""
    stem: Literal["auto", "cifar", "imagenet"] = D.STEM
    """auto = CIFAR stem (3x3, no max-pool) up to 64 px, else ImageNet"""
    widths: Widths = D.WIDTHS
    """small: channels per stage; h has widths[-1] dimensions"""
    blocks: Blocks = D.BLOCKS
    """small: BasicBlocks per stage"""
    head: Literal["v1", "v2"] = D.HEAD
    """projection head: v1 = 2-layer MLP, v2 = 3-layer MLP"""
    proj_hidden_dim: Int = Field(D.PROJ_HIDDEN_DIM, gt=0, le=MAX_CHANNELS)
    proj_dim: Int = Field(D.PROJ_DIM, gt=0, le=MAX_CHANNELS)

    @model_validator(mode="after")
    def _stages(self) -> ModelConfig:
        if len(self.widths) != len(self.blocks):
            raise fail(("widths",), self.widths, f"as many stages as blocks ({len(self.blocks)})")
        return self


class AugmentConfig(_Model):
    """The paper's augmentation (appendix A): random resized crop, horizontal flip, colour
    jitter, random grayscale, and Gaussian blur on images above 32 px (its CIFAR setting has
    none)."""

    crop_scale: Scale = D.CROP_SCALE
    """area of the random resized crop, as a share of the image"""
    crop_ratio: Ratio = D.CROP_RATIO
    """aspect ratios of the crop (3/4 to 4/3)"""
    flip_p: Prob = D.FLIP_P
    """probability of a horizontal flip"""
    jitter_strength: Float = Field(D.JITTER_STRENGTH, ge=0, allow_inf_nan=False)
    """s: brightness, contrast, saturation 0.8s, hue 0.2s"""
    jitter_p: Prob = D.JITTER_P
    grayscale_p: Prob = D.GRAYSCALE_P
    blur_p: Prob = D.BLUR_P
    blur_min_size: Int = D.BLUR_MIN_SIZE
    """no blur at 32 px or less, as in the paper's CIFAR setting"""


class DistributedConfig(_Model):
    """Processes for pretraining, started by torchrun: nnodes machines x nproc_per_node each
    (one per GPU). pretrain.batch_size is the global batch, split evenly across them."""

    nnodes: Int = Field(1, ge=1)
    """machines; > 1: run docs/gpu.md "Several GPUs, several machines" on the others"""
    nproc_per_node: Int = Field(1, ge=1, le=MAX_PROCESSES)
    """processes per machine: one per GPU (CPU: gloo, for testing)"""
    master_addr: Str = Field("127.0.0.1", min_length=1)
    """node 0's address, reachable from the others (nnodes > 1)"""
    master_port: Int = Field(29500, gt=0, lt=65536)

    @property
    def world_size(self) -> int:
        return self.nnodes * self.nproc_per_node


class PretrainConfig(_Model):
    dataset: Str = "digits"
    epochs: Int = Field(D.EPOCHS, ge=1)
    batch_size: Int = Field(D.BATCH_SIZE, ge=2, le=MAX_BATCH)
    optimizer: Literal["sgd", "lars", "adamw"] = D.OPTIMIZER
    """sgd (Nesterov), lars (the paper's) or adamw; see docs/method.md"""
    lr: FinitePositive = D.LR
    """base rate, scaled by the batch as lr_scaling says"""
    lr_scaling: Literal["linear", "sqrt"] = D.LR_SCALING
    """linear: lr * batch / 256; sqrt: lr * sqrt(batch)"""
    momentum: Float = Field(D.MOMENTUM, gt=0, lt=1)
    weight_decay: Float = Field(D.WEIGHT_DECAY, ge=0, allow_inf_nan=False)
    trust_coefficient: FinitePositive = D.TRUST_COEFFICIENT
    """LARS eta"""
    warmup_epochs: Int = Field(D.WARMUP_EPOCHS, ge=0)
    temperature: FinitePositive = D.TEMPERATURE
    device: Literal["auto", "cpu", "cuda", "mps"] = D.DEVICE
    """auto = cuda, then mps, then cpu"""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = D.PRECISION
    """auto = bf16 where supported, else fp32; or fp32, bf16, fp16 (GPU)"""
    channels_last: Bool = D.CHANNELS_LAST
    batchnorm: Literal["joint", "per_view"] = D.BATCHNORM
    """joint: BN statistics over all 2N views (the paper's); per_view: over each view's N"""
    compile: Bool = D.COMPILE
    """torch.compile encoder and head"""
    threads: Int | None = Field(D.THREADS, ge=1)
    """torch CPU threads; null = torch's default"""
    loader_workers: Int = Field(D.LOADER_WORKERS, ge=0, le=MAX_PROCESSES)
    """processes reading batches (a GPU may want 4-8)"""
    knn_every: Int = Field(D.KNN_EVERY, ge=0)
    """kNN monitor on the labelled split every K epochs; 0 = off"""
    knn_k: Int = Field(D.KNN_K, ge=1, le=MAX_NEIGHBOURS)
    knn_temperature: FinitePositive = D.KNN_TEMPERATURE
    distributed: DistributedConfig = DistributedConfig()
    """data-parallel processes started by torchrun; batch_size is global"""
    augment: AugmentConfig = AugmentConfig()

    @model_validator(mode="after")
    def _batches(self) -> PretrainConfig:
        size = self.distributed.world_size
        if self.batch_size % size:
            raise fail(("batch_size",), self.batch_size, f"a multiple of the {size} processes")
        if self.warmup_epochs > self.epochs:
            raise fail(("warmup_epochs",), self.warmup_epochs, f"at most epochs ({self.epochs})")
        return self


class FinetuneConfig(_Model):
    """Semi-supervised fine-tuning as the paper: encoder + linear head on the labelled subset,
    random resized crop and flip only, Nesterov SGD, cosine decay, no warmup."""

    epochs: Int = Field(D.FINETUNE_EPOCHS, ge=0)
    """passes over the labelled subset, within [min_steps, max_steps]"""
    seeds: Int = Field(D.FINETUNE_SEEDS, ge=1, le=1000)
    """label subsets fine-tuned per fraction: the first of evaluate.seeds (the costly protocol)"""
    min_steps: Int = Field(D.FINETUNE_MIN_STEPS, ge=0)
    """tiny subsets still get this many updates"""
    max_steps: Int = Field(D.FINETUNE_MAX_STEPS, ge=0)
    """0 = no cap; bounds the cost of the 100 % runs (x replicas)"""
    batch_size: Int = Field(D.FINETUNE_BATCH_SIZE, ge=2, le=MAX_BATCH)
    lr: FinitePositive = D.FINETUNE_LR
    """used as given (not rescaled by the batch); cosine decay"""
    momentum: Float = Field(D.FINETUNE_MOMENTUM, ge=0, lt=1)
    weight_decay: Float = Field(D.FINETUNE_WEIGHT_DECAY, ge=0, allow_inf_nan=False)
    """the paper fine-tunes without regularization"""
    crop_scale: Scale = D.CROP_SCALE
    """random resized crop area, as pretrain.augment"""
    flip_p: Prob = D.FLIP_P
    """probability of a horizontal flip"""


class EvaluateConfig(_Model):
    fractions: Shares = D.FRACTIONS
    """labelled share of each class (class-balanced, >= 1 image)"""
    seeds: Int = Field(D.EVAL_SEEDS, ge=1, le=1000)
    """label subsets per fraction below 1.0 (1.0 is the whole split), per replica"""
    val_fraction: Float = Field(D.VAL_FRACTION, gt=0, lt=1)
    """of each subset, held out to choose the probe's L2 strength"""
    C: Positives = D.PROBE_C
    """inverse L2 strengths tried (log-spaced grid)"""
    max_iter: Int = Field(D.PROBE_MAX_ITER, ge=1)
    """L-BFGS iterations per fit"""
    batch_size: Int = Field(D.EVAL_BATCH_SIZE, ge=1, le=MAX_BATCH)
    """feature extraction and test predictions; a GPU wants more"""
    knn_k: Int = Field(D.EVAL_KNN_K, ge=1, le=MAX_NEIGHBOURS)
    """neighbours that vote in the kNN classifier"""
    knn_temperature: FinitePositive = D.EVAL_KNN_TEMPERATURE
    finetune: FinetuneConfig = FinetuneConfig()
    """encoder + linear head on the labelled subset; epochs 0 = off"""

    @model_validator(mode="after")
    def _finetune_subsets(self) -> EvaluateConfig:
        if self.finetune.seeds > self.seeds:
            raise fail(("finetune", "seeds"), self.finetune.seeds, f"at most seeds ({self.seeds})")
        return self


Replicas = Annotated[
    tuple[Annotated[Int, Field(ge=0)], ...], Field(min_length=1), AfterValidator(_unique)
]


class TransferConfig(_Model):
    datasets: Annotated[tuple[Str, ...], AfterValidator(_unique)] = ()
    """datasets the encoder is evaluated on besides the pretraining set (as evaluate)"""


# A dataset's name becomes a folder (data/prepared/<name>) and part of DVC stage names.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


with warnings.catch_warnings():
    # The key `validate` shadows BaseModel.validate, pydantic 1's deprecated classmethod that
    # nothing calls; pydantic warns about it when the class is created.
    warnings.filterwarnings("ignore", 'Field name "validate"', UserWarning)

    class Params(_Model):
        """params.yaml."""

        seed: Int = Field(0, ge=0, lt=2**32)
        replicas: Replicas = (0, 1, 2)
        """pretraining-seed replicas, each its own stages: replica r pretrains with seed + r"""
        data: DataConfig = DataConfig()
        """defaults for every dataset; a dataset's entry may override each"""
        datasets: dict[str, DatasetConfig] = Field(
            default_factory=lambda: {n: DatasetConfig(source=n) for n in SOURCES}, min_length=1
        )
        'name -> source; see docs/data.md "Your own data"'
        validate: ValidateConfig = ValidateConfig()
        """the data checks; a failing one stops the pipeline before pretraining"""
        model: ModelConfig = ModelConfig()
        pretrain: PretrainConfig = PretrainConfig()
        evaluate: EvaluateConfig = EvaluateConfig()
        """the paper's protocols; transfer@<dataset> uses the same"""
        transfer: TransferConfig = TransferConfig()

        @field_validator("datasets", mode="before")
        @classmethod
        def _names_as_text(cls, value):
            return {str(k): v for k, v in value.items()} if isinstance(value, dict) else value

        @model_validator(mode="after")
        def _datasets_named(self) -> Params:
            names = tuple(self.datasets)
            for name, ds in self.datasets.items():
                if not NAME.fullmatch(name):
                    raise rule(
                        ("datasets", name),
                        ": a dataset name may hold letters, digits, '_' and '-' only "
                        "(it names a folder and a DVC stage)",
                    )
                try:
                    ds.options(self.data)
                except ValidationError as e:
                    raise relay(("datasets", name), DataConfig, e) from None
            if self.pretrain.dataset not in names:
                raise fail(("pretrain", "dataset"), self.pretrain.dataset, ", ".join(names))
            for i, name in enumerate(self.transfer.datasets):
                if name not in names:
                    raise fail(("transfer", "datasets", i), name, ", ".join(names))
            if self.seed + max(self.replicas) >= 2**32:  # replica r's seed is seed + r
                top = 2**32 - 1 - self.seed
                raise fail(
                    ("replicas",),
                    self.replicas,
                    f"replicas of at most {top} (seed + r below 2**32)",
                )
            return self


def load_params(path: str | Path = "params.yaml", overrides: dict | None = None) -> Params:
    """Read, type-check and validate params.yaml; with `overrides` (dotted key -> value), the
    params an experiment with those overrides runs with (`with_overrides`)."""
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: file not found; run from the repository root")
    raw = read_yaml(path)
    raw = {} if raw is None else raw
    return from_dict(Params, with_overrides(raw, overrides) if overrides else raw)


def with_overrides(raw, overrides: dict):
    """params.yaml's data with each dotted key set as `dvc exp run -S ++key=value` sets it (the
    pipeline flow's overrides): added where missing, so that a misspelt key reaches the schema
    and is refused there, naming it."""
    if not isinstance(raw, dict):
        return raw  # not a mapping: the schema refuses it as it is
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        *parents, last = str(key).split(".")
        node = out
        for i, part in enumerate(parents):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                above = ".".join(parents[: i + 1])
                raise PipelineError(
                    f"override {key}: params.yaml's {above} is {show(node)}, not a mapping of "
                    "keys; set a key that params.yaml has"
                )
        node[last] = value
    return out


def to_dict(cfg: BaseModel) -> dict:
    """A config as plain JSON-able data (tuples become lists)."""
    return cfg.model_dump(mode="json")


def from_dict(cls: type[BaseModel], raw, key: str = ""):
    """`raw` (params.yaml's data, or to_dict's) as a `cls`; a bad value is a one-line
    PipelineError naming it, its key prefixed by `key`."""
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise PipelineError(one_line(cls, e, key)) from None

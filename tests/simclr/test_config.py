import json
import time
from pathlib import Path

import pytest
from helpers import ROOT, params_differences
from ruamel.yaml import YAML

from simclr.config import (
    AugmentConfig,
    DataConfig,
    DatasetConfig,
    EvaluateConfig,
    FinetuneConfig,
    ModelConfig,
    Params,
    PretrainConfig,
    TransferConfig,
    from_dict,
    load_params,
    to_dict,
)
from simclr.config_errors import MAX_DEPTH, MAX_SHOWN
from simclr.errors import PipelineError


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def error_line(path: Path) -> str:
    with pytest.raises(PipelineError) as e:
        load_params(path)
    message = str(e.value)
    assert "\n" not in message
    return message


def test_repository_params_load_and_match_types():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.pretrain.dataset in params.datasets
    assert params.pretrain.augment.crop_scale == (0.3, 1.0)
    assert params.evaluate.fractions == (0.01, 0.1, 1.0)


# ---------------------------------------------------------------------------------------------
# One source of defaults: the models, whose defaults are the paper's recipe. params.yaml spells
# out every key, with the field's description as its comment, or where it departs from the
# paper (the digits experiment) `paper: <default>; <why>`.


def test_the_defaults_are_the_papers_recipe():
    """Chen et al. 2020: appendix A (augmentations), B.1 (LARS 0.3 x B/256, weight decay 1e-6,
    10 warm-up epochs of 100, 2-layer head to 128 dims), B.9 (CIFAR-10: 32 px, temperature
    0.5), B.5 (fine-tuning: crop and flip, no regularisation)."""
    aug = AugmentConfig()
    assert (aug.crop_scale, aug.crop_ratio) == ((0.08, 1.0), (0.75, 1.3333333))
    assert (aug.flip_p, aug.jitter_strength, aug.jitter_p, aug.grayscale_p) == (0.5, 1.0, 0.8, 0.2)
    assert (aug.blur_p, aug.blur_min_size) == (0.5, 33)  # CIFAR-10 (32 px) without blur
    p = PretrainConfig()
    assert (p.optimizer, p.lr, p.lr_scaling, p.weight_decay) == ("lars", 0.3, "linear", 1e-6)
    assert (p.epochs, p.warmup_epochs, p.temperature, p.momentum) == (100, 10, 0.5, 0.9)
    assert p.trust_coefficient == 0.001
    m = ModelConfig()
    assert (m.head, m.proj_dim) == ("v1", 128)
    f = FinetuneConfig()
    assert (f.crop_scale, f.flip_p, f.weight_decay, f.momentum) == ((0.08, 1.0), 0.5, 0.0, 0.9)
    assert DataConfig().image_size == 32 and TransferConfig().datasets == ()
    assert EvaluateConfig().fractions == (0.01, 0.1, 1.0)
    # The defaults obey their own rules (pydantic does not validate defaults).
    assert from_dict(Params, to_dict(Params())) == Params()


def test_params_yaml_lists_every_key_and_says_why_it_departs_from_the_paper():
    node = YAML().load(ROOT / "params.yaml")  # round-trip: keeps the comments
    assert params_differences(node, Params, loaded=load_params(ROOT / "params.yaml")) == []


def test_a_departure_without_its_reason_is_caught():
    text = (ROOT / "params.yaml").read_text()
    silent = text.replace("# paper: 0.5; digits are not mirror-symmetric", "# flip", 1)
    node = YAML().load(silent)
    loaded = load_params(ROOT / "params.yaml")
    assert params_differences(node, Params, loaded=loaded) == [
        "pretrain.augment.flip_p: departs from the paper; comment 'flip' should read "
        "'paper: 0.5; <why>'"
    ]


def test_the_comparison_sees_a_stale_comment_and_a_missing_key(tmp_path):
    text = (ROOT / "params.yaml").read_text()
    loaded = load_params(ROOT / "params.yaml")
    stale = text.replace("# stretch to the square, or crop", "# stretch, or crop")
    assert params_differences(YAML().load(stale), Params, loaded=loaded) == [
        "data.resize: comment 'stretch, or crop (shorter side, then centre crop)' "
        "!= 'stretch to the square, or crop (shorter side, then centre crop)'"
    ]
    missing = YAML().load(text.replace("  proj_hidden_dim: 128\n", ""))
    assert params_differences(missing, Params, loaded=loaded) == [
        "model.proj_hidden_dim: missing from params.yaml"
    ]


# ---------------------------------------------------------------------------------------------
# Errors: one line, `params.yaml: <dotted.key> = <value>; allowed: <what>`.

ONE_DATASET = "datasets: {digits: {source: digits}}\ntransfer: {datasets: []}\n"
SOURCES = "digits, faces, mnist, textures, cifar10, cifar100, stl10, imagefolder, npz"


def test_unknown_key_names_the_key_and_allowed_keys(tmp_path):
    msg = error_line(write(tmp_path, "pretrain:\n  epochz: 3\n"))
    assert "'pretrain.epochz'" in msg and "epochs" in msg and "temperature" in msg


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # bad choice
        (
            "datasets:\n  cats: {source: imagenet}\npretrain: {dataset: cats}\n",
            f"datasets.cats.source = 'imagenet'; allowed: {SOURCES}",
        ),
        (
            ONE_DATASET + "pretrain: {optimizer: lamb}\n",
            "pretrain.optimizer = 'lamb'; allowed: sgd",
        ),
        (
            ONE_DATASET + "data: {resize: squash}\n",
            "data.resize = 'squash'; allowed: stretch, crop",
        ),
        (ONE_DATASET + "data: {channels: 2}\n", "data.channels = 2; allowed: null, 1, 3"),
        # wrong type: a bool is not an int, a string is not a number, a scalar not a list
        (ONE_DATASET + "pretrain: {epochs: ten}\n", "pretrain.epochs = 'ten'; allowed: an integer"),
        (ONE_DATASET + "pretrain: {epochs: true}\n", "pretrain.epochs = true; allowed: an integer"),
        (ONE_DATASET + "data: {channels: true}\n", "data.channels = true; allowed: null, 1, 3"),
        (ONE_DATASET + "pretrain: {lr: '0.5'}\n", "pretrain.lr = '0.5'; allowed: a finite number"),
        (ONE_DATASET + "pretrain: {lr: false}\n", "pretrain.lr = false; allowed: a finite number"),
        (
            ONE_DATASET + "data: {skip_corrupt: 1}\n",
            "data.skip_corrupt = 1; allowed: true or false",
        ),
        (
            ONE_DATASET + "evaluate: {C: 1.0}\n",
            "evaluate.C = 1.0; allowed: a non-empty list of finite numbers > 0",
        ),
        (
            "- a list\n",
            "top level = ['a list']; allowed: a mapping of seed, replicas, data, datasets,",
        ),
        (ONE_DATASET + "pretrain: 3\n", "pretrain = 3; allowed: a mapping of dataset, epochs,"),
        # out of range
        (ONE_DATASET + "seed: -1\n", "seed = -1; allowed: an integer in [0, 4294967296)"),
        (ONE_DATASET + "pretrain: {threads: 0}\n", "pretrain.threads = 0; allowed: null or an"),
        (ONE_DATASET + "pretrain: {lr: .inf}\n", "pretrain.lr = inf; allowed: a finite number > 0"),
        (
            ONE_DATASET + "pretrain: {momentum: 0}\n",
            "pretrain.momentum = 0; allowed: a number in (0, 1)",
        ),
        (
            ONE_DATASET + "evaluate: {fractions: [0, 2]}\n",
            "evaluate.fractions[0] = 0; allowed: a number in (0, 1]",
        ),
        (
            ONE_DATASET + "evaluate: {batch_size: 0}\n",
            "evaluate.batch_size = 0; allowed: an integer in [1, 65536]",
        ),
        (
            ONE_DATASET + "evaluate: {C: []}\n",
            "evaluate.C = []; allowed: a non-empty list of finite",
        ),
        (
            ONE_DATASET + "evaluate: {C: [1, -1]}\n",
            "evaluate.C[1] = -1; allowed: a finite number > 0",
        ),
        (
            ONE_DATASET + "evaluate: {val_fraction: 1}\n",
            "evaluate.val_fraction = 1; allowed: a number in (0, 1)",
        ),
        (
            ONE_DATASET + "evaluate: {knn_k: 0}\n",
            "evaluate.knn_k = 0; allowed: an integer in [1, 10000]",
        ),
        # an integer k far beyond any data (YAML's 1e20 is a float, refused as one)
        (
            ONE_DATASET + "evaluate: {knn_k: 100000000000000000000}\n",
            "evaluate.knn_k = 100000000000000000000; allowed: an integer in [1, 10000]",
        ),
        (ONE_DATASET + "pretrain: {knn_k: 10001}\n", "pretrain.knn_k = 10001; allowed: an"),
        # non-finite values where only finite ones make sense
        (
            ONE_DATASET + "pretrain: {weight_decay: .inf}\n",
            "pretrain.weight_decay = inf; allowed: a finite number >= 0",
        ),
        (
            ONE_DATASET + "evaluate: {finetune: {weight_decay: .nan}}\n",
            "evaluate.finetune.weight_decay = nan; allowed: a finite number >= 0",
        ),
        (
            ONE_DATASET + "pretrain: {augment: {jitter_strength: .inf}}\n",
            "pretrain.augment.jitter_strength = inf; allowed: a finite number >= 0",
        ),
        (
            ONE_DATASET + "pretrain: {augment: {crop_ratio: [1, .inf]}}\n",
            "pretrain.augment.crop_ratio[1] = inf; allowed: a finite number > 0",
        ),
        (
            ONE_DATASET + "validate: {min_pixel_std: .inf}\n",
            "validate.min_pixel_std = inf; allowed: a finite number >= 0",
        ),
        (
            ONE_DATASET + "validate: {max_imbalance: .inf}\n",
            "validate.max_imbalance = inf; allowed: a finite number >= 1",
        ),
        (
            ONE_DATASET + "evaluate: {finetune: {batch_size: 1}}\n",
            "evaluate.finetune.batch_size = 1; allowed: an integer in [2, 65536]",
        ),
        (ONE_DATASET + "evaluate: {finetune: {epochs: -1}}\n", "evaluate.finetune.epochs = -1;"),
        (ONE_DATASET + "evaluate: {finetune: {lr: 0}}\n", "evaluate.finetune.lr = 0; allowed: a"),
        (ONE_DATASET + "data: {fraction: 0}\n", "data.fraction = 0; allowed: a number in (0, 1]"),
        (ONE_DATASET + "validate: {max_imbalance: 0.5}\n", "validate.max_imbalance = 0.5;"),
        (
            ONE_DATASET + "pretrain: {augment: {crop_scale: [0.5, 0.6, 0.7]}}\n",
            "pretrain.augment.crop_scale = [0.5, 0.6, 0.7]; allowed: a list of 2 numbers in (0, 1]",
        ),
        (
            ONE_DATASET + "pretrain: {distributed: {master_addr: ''}}\n",
            "pretrain.distributed.master_addr = ''; allowed: a non-empty string",
        ),
        # a rule between keys, or within one
        (
            ONE_DATASET + "pretrain: {augment: {crop_scale: [0.9, 0.2]}}\n",
            "pretrain.augment.crop_scale = [0.9, 0.2]; allowed: [low, high] with low <= high",
        ),
        (
            ONE_DATASET + "evaluate: {fractions: [0.1, 0.1]}\n",
            "evaluate.fractions = [0.1, 0.1]; allowed: a list without repeats",
        ),
        (ONE_DATASET + "pretrain: {pretrain_typo: 1}\n", "unknown key 'pretrain.pretrain_typo'"),
        (ONE_DATASET + "1: 2\n", "unknown key '[1]'; allowed: data, datasets, evaluate,"),
        (
            ONE_DATASET + "pretrain: {dataset: mnist}\n",
            "pretrain.dataset = 'mnist'; allowed: digits",
        ),
        (
            "datasets: {digits: {source: digits}}\ntransfer: {datasets: [digits, cifar]}\n",
            "transfer.datasets[1] = 'cifar'; allowed: digits",
        ),
        (
            "datasets: {digits: {source: digits}}\ntransfer: {datasets: [digits, digits]}\n",
            "transfer.datasets = ['digits', 'digits']; allowed: a list without repeats",
        ),
        (
            ONE_DATASET + "pretrain: {epochs: 3, warmup_epochs: 4}\n",
            "pretrain.warmup_epochs = 4; allowed: at most epochs (3)",
        ),
        (
            ONE_DATASET + "pretrain: {batch_size: 255, distributed: {nproc_per_node: 2}}\n",
            "pretrain.batch_size = 255; allowed: a multiple of the 2 processes",
        ),
        (
            ONE_DATASET + "model: {widths: [8], blocks: [1, 1]}\n",
            "model.widths = [8]; allowed: as many stages as blocks (2)",
        ),
        (
            ONE_DATASET + "evaluate: {seeds: 2, finetune: {seeds: 3}}\n",
            "evaluate.finetune.seeds = 3; allowed: at most seeds (2)",
        ),
        (
            ONE_DATASET + "validate: {min_rows: 30, max_rows: 20}\n",
            "validate.min_rows = 30; allowed: at most max_rows (20)",
        ),
        # missing, and keys a source requires or does not take
        ("datasets: {x: {}}\n", f"datasets.x.source is required; allowed: {SOURCES}"),
        (
            ONE_DATASET + "pretrain: {augment: {crop_scale: [0.5]}}\n",
            "pretrain.augment.crop_scale[1] is required; allowed: a number in (0, 1]",
        ),
        (
            "datasets: {pets: {source: imagefolder}}\n",
            "datasets.pets.root is required for source imagefolder; set it to the folder to read",
        ),
        (
            "datasets: {a: {source: npz}}\n",
            "datasets.a.path is required for source npz; set it to the .npz file",
        ),
        (
            "datasets: {digits: {source: digits, root: /x}}\n",
            "datasets.digits.root = '/x' does not apply to source digits; it is for imagefolder",
        ),
        (
            "datasets: {c: {source: cifar10, root: /x, unlabeled: true}}\n",
            "datasets.c.unlabeled = true does not apply to source cifar10; it is for stl10",
        ),
        # a dataset's overrides obey data's rules once merged with data
        (
            "datasets: {d: {source: digits, image_size: 2}}\n",
            "datasets.d.image_size = 2; allowed: an integer in [4, 1024]",
        ),
        (
            "datasets: {d: {source: digits, resize: squash}}\n",
            "datasets.d.resize = 'squash'; allowed: stretch, crop",
        ),
        (
            "datasets: {d: {source: digits, fraction: x}}\n",
            "datasets.d.fraction = 'x'; allowed: null or a number",
        ),
        ("datasets: {'my pets': {source: digits}}\n", "datasets.my pets: a dataset name may hold"),
        ("datasets: {}\n", "datasets = {}; allowed: a non-empty mapping of names to settings"),
    ],
)
def test_bad_values_are_named_in_one_line(tmp_path, text, message):
    line = error_line(write(tmp_path, text))
    assert line.startswith(f"params.yaml: {message}")


def test_a_yaml_alias_bomb_is_one_short_line(tmp_path):
    # 9**9 strings if expanded; YAML aliases share them, and so does the message.
    levels = ["&a [" + ", ".join(["lol"] * 9) + "]"]
    levels += [
        f"&{b} [" + ", ".join([f"*{a}"] * 9) + "]"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    ]
    p = write(tmp_path, ONE_DATASET + "pretrain: {lr: [" + ", ".join(levels) + "]}\n")
    start = time.perf_counter()
    line = error_line(p)
    assert time.perf_counter() - start < 5
    assert line.startswith("params.yaml: pretrain.lr = [['lol', 'lol', ")
    assert line.endswith("; allowed: a finite number > 0")
    assert len(line) < MAX_SHOWN + 100


def test_a_huge_string_is_cut_short(tmp_path):
    line = error_line(write(tmp_path, ONE_DATASET + f"pretrain: {{device: {'x' * 10**6}}}\n"))
    assert line.startswith("params.yaml: pretrain.device = 'xxx") and "..." in line
    assert line.endswith("; allowed: auto, cpu, cuda, mps") and len(line) < MAX_SHOWN + 100


def test_deep_nesting_is_one_line_not_a_recursion_error(tmp_path):
    p = write(tmp_path, ONE_DATASET + "pretrain: {lr: " + "[" * 900 + "]" * 900 + "}\n")
    assert error_line(p) == (
        f"params.yaml: pretrain.lr is nested more than {MAX_DEPTH} levels deep (line 3); "
        "no param nests deeper than 4"
    )


def test_non_utf8_file_is_one_line(tmp_path):
    p = tmp_path / "params.yaml"
    p.write_bytes("seed: 0  # caf\xe9\n".encode("latin-1"))
    assert error_line(p) == f"{p}: not UTF-8 text (byte 0xe9 at offset 14); save it as UTF-8"


def test_yaml_syntax_error_gives_line(tmp_path):
    line = error_line(write(tmp_path, "pretrain:\n  epochs: [1, 2\n"))
    assert "not valid YAML at line 3: expected ',' or ']'" in line and "fix the syntax" in line
    line = error_line(write(tmp_path, "seed: 0\nseed: 1\n"))
    assert 'not valid YAML at line 2: found duplicate key "seed"' in line


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_an_empty_file_is_the_defaults(tmp_path):
    assert load_params(write(tmp_path, "")) == Params()


# ---------------------------------------------------------------------------------------------
# Values as `dvc exp run -S` writes them, and the plain-data round trip.


def test_overrides_as_dvc_set_param_writes_them_are_numbers(tmp_path):
    # `dvc exp run -S pretrain.lr=1e-4` writes YAML 1.2 floats like 1e-04; `-S ...=1` an int.
    text = "pretrain: {weight_decay: 1e-06, lr: 1e-4, momentum: 0.5, temperature: 1}\n"
    params = load_params(write(tmp_path, ONE_DATASET + text + "validate: {max_imbalance: 10}\n"))
    assert params.pretrain.weight_decay == 1e-6 and params.pretrain.lr == 1e-4
    assert params.pretrain.temperature == 1.0 and type(params.pretrain.temperature) is float
    assert type(params.validate.max_imbalance) is float


def test_to_dict_is_json_and_from_dict_gives_the_same_config_back():
    params = load_params(ROOT / "params.yaml")
    plain = to_dict(params)
    assert plain["model"]["widths"] == [32, 64, 128]  # lists, as JSON has them
    assert from_dict(Params, json.loads(json.dumps(plain))) == params
    assert params.model.widths == (32, 64, 128)  # tuples in the config: hashable, comparable
    assert hash(params.model) == hash(from_dict(ModelConfig, plain["model"]))


def test_from_dict_errors_name_the_prefix():
    with pytest.raises(PipelineError, match=r"^params.yaml: checkpoint\.model\.encoder = 'vgg';"):
        from_dict(ModelConfig, {"encoder": "vgg"}, "checkpoint.model")


def test_configs_are_frozen():
    with pytest.raises(ValueError, match="frozen"):
        Params().seed = 1


def test_dataset_options_are_data_with_the_overrides():
    opts = DatasetConfig(source="digits", image_size=32).options(DataConfig(resize="crop"))
    assert opts == DataConfig(image_size=32, resize="crop")

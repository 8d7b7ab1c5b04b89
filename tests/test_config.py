import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

from simclr.config import Params, PretrainConfig, load_params
from simclr.errors import PipelineError

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "params.yaml"
    p.write_text(text)
    return p


def test_repository_params_load_and_match_types():
    params = load_params(ROOT / "params.yaml")
    assert isinstance(params, Params)
    assert params.pretrain.dataset in params.datasets
    assert params.pretrain.augment.crop_scale == (0.3, 1.0)
    assert params.evaluate.fractions == (0.01, 0.1, 1.0)


def test_unknown_key_names_the_key_and_allowed_keys(tmp_path):
    p = write(tmp_path, "pretrain:\n  epochz: 3\n")
    with pytest.raises(PipelineError) as e:
        load_params(p)
    msg = str(e.value)
    assert "'pretrain.epochz'" in msg and "epochs" in msg and "temperature" in msg
    assert "\n" not in msg


ONE_DATASET = "datasets: {digits: {source: digits}}\ntransfer: {datasets: []}\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "datasets:\n  cats: {source: imagenet}\npretrain: {dataset: cats}\n",
            r"datasets\.cats\.source = 'imagenet'.*allowed: digits, faces, mnist, textures",
        ),
        (
            ONE_DATASET + "pretrain: {dataset: mnist}\n",
            r"pretrain\.dataset = 'mnist'.*allowed values: digits$",
        ),
        (
            "datasets: {digits: {source: digits}}\ntransfer: {datasets: [cifar]}\n",
            r"transfer\.datasets = 'cifar'.*allowed values: digits$",
        ),
        (ONE_DATASET + "pretrain: {epochs: ten}\n", r"pretrain\.epochs must be int, got 'ten'"),
        (ONE_DATASET + "pretrain: {optimizer: lamb}\n", r"pretrain\.optimizer = 'lamb'.*sgd"),
        (
            ONE_DATASET + "pretrain: {augment: {crop_scale: [0.9, 0.2]}}\n",
            r"pretrain\.augment\.crop_scale; allowed: \[low, high\]",
        ),
        (ONE_DATASET + "evaluate: {fractions: [0, 2]}\n", r"evaluate\.fractions"),
        ("- a list\n", r"top level must be a mapping"),
        ("datasets: {x: {}}\n", r"datasets\.x\.source is required"),
        (ONE_DATASET + "seed: -1\n", r"seed; allowed: an integer in \[0, 2\*\*32\)"),
        (ONE_DATASET + "pretrain: {threads: 0}\n", r"pretrain\.threads"),
        (ONE_DATASET + "pretrain: {lr: .inf}\n", r"pretrain\.lr; allowed: a finite number"),
        (ONE_DATASET + "pretrain: {momentum: 0}\n", r"pretrain\.momentum"),
        (ONE_DATASET + "evaluate: {fractions: [0.1, 0.1]}\n", r"evaluate\.fractions.*no repeats"),
        (ONE_DATASET + "evaluate: {batch_size: 0}\n", r"evaluate\.batch_size"),
        (ONE_DATASET + "evaluate: {C: []}\n", r"evaluate\.C; allowed: a list of finite num"),
        (ONE_DATASET + "evaluate: {C: [1, -1]}\n", r"evaluate\.C; allowed"),
        (ONE_DATASET + "evaluate: {C: 1.0}\n", r"evaluate\.C must be a list"),
        (ONE_DATASET + "evaluate: {val_fraction: 1}\n", r"evaluate\.val_fraction.*\(0, 1\)"),
        (ONE_DATASET + "evaluate: {knn_k: 0}\n", r"evaluate\.knn_k"),
        (
            ONE_DATASET + "evaluate: {finetune: {batch_size: 1}}\n",
            r"evaluate\.finetune\.batch_size; allowed: an integer >= 2",
        ),
        (ONE_DATASET + "evaluate: {finetune: {epochs: -1}}\n", r"evaluate\.finetune\.epochs"),
        (ONE_DATASET + "evaluate: {finetune: {lr: 0}}\n", r"evaluate\.finetune\.lr"),
        (ONE_DATASET + "evaluate: {finetune: {stepz: 1}}\n", r"key 'evaluate\.finetune\.stepz'"),
        ("datasets: {pets: {source: imagefolder}}\n", r"datasets\.pets\.root is required"),
        ("datasets: {a: {source: npz}}\n", r"datasets\.a\.path is required.*\.npz file"),
        (
            "datasets: {digits: {source: digits, root: /x}}\n",
            r"datasets\.digits\.root does not apply to source digits; it is for imagefolder",
        ),
        (
            "datasets: {c: {source: cifar10, root: /x, unlabeled: true}}\n",
            r"datasets\.c\.unlabeled does not apply to source cifar10; it is for stl10",
        ),
        (ONE_DATASET + "data: {resize: squash}\n", r"data\.resize = 'squash'.*stretch, crop"),
        (ONE_DATASET + "data: {channels: 2}\n", r"data\.channels; allowed: null, 1 or 3"),
        (ONE_DATASET + "data: {fraction: 0}\n", r"data\.fraction; allowed: a number in \(0, 1\]"),
        (
            "datasets: {d: {source: digits, image_size: 2}}\n",
            r"datasets\.d\.image_size; allowed: an integer >= 4",
        ),
        ("datasets: {'my pets': {source: digits}}\n", r"datasets\.my pets: a dataset name"),
        (ONE_DATASET + "validate: {max_imbalance: 0.5}\n", r"validate\.max_imbalance"),
    ],
)
def test_bad_values_are_named_in_one_line(tmp_path, text, message):
    with pytest.raises(PipelineError, match=message) as e:
        load_params(write(tmp_path, text))
    assert "\n" not in str(e.value)


def test_yaml_syntax_error_gives_line(tmp_path):
    p = write(tmp_path, "pretrain:\n  epochs: [1, 2\n")
    with pytest.raises(PipelineError, match=r"not valid YAML at line \d+"):
        load_params(p)


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        load_params(tmp_path / "nope.yaml")


def test_scientific_notation_from_dvc_set_param_is_a_number(tmp_path):
    # `dvc exp run -S pretrain.weight_decay=1e-6` writes YAML 1.2 floats like 1e-06.
    p = write(tmp_path, ONE_DATASET + "pretrain: {weight_decay: 1e-06, lr: 3e-1}\n")
    params = load_params(p)
    assert params.pretrain.weight_decay == 1e-6 and params.pretrain.lr == 0.3


def test_check_command_prints_one_line_and_exits_2(tmp_path):
    (tmp_path / "params.yaml").write_text("pretrain:\n  epochz: 3\n")
    r = subprocess.run(
        [sys.executable, "-m", "flows.check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: params.yaml: unknown key 'pretrain.epochz'; allowed: "
        + ", ".join(sorted(f.name for f in dataclasses.fields(PretrainConfig)))
    ]
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    ok = subprocess.run(
        [sys.executable, "-m", "flows.check"], cwd=tmp_path, capture_output=True, text=True
    )
    assert ok.returncode == 0 and ok.stdout.strip() == "params.yaml: ok"

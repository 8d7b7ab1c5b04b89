from pathlib import Path

import pytest

from simclr.config import Params, load_params
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


def test_unknown_dataset_source_lists_allowed_values(tmp_path):
    p = write(tmp_path, "datasets:\n  cats: {source: imagenet}\npretrain: {dataset: cats}\n")
    with pytest.raises(PipelineError, match=r"datasets\.cats\.source = 'imagenet'.*digits, faces"):
        load_params(p)


def test_pretrain_dataset_must_be_a_declared_dataset(tmp_path):
    p = write(
        tmp_path,
        "datasets:\n  digits: {source: digits}\npretrain: {dataset: mnist}\n"
        "transfer: {datasets: []}\n",
    )
    with pytest.raises(PipelineError, match=r"pretrain\.dataset = 'mnist'.*allowed values: digits"):
        load_params(p)


def test_wrong_type_is_named(tmp_path):
    p = write(
        tmp_path,
        "datasets: {digits: {source: digits}}\ntransfer: {datasets: []}\npretrain: {epochs: ten}\n",
    )
    with pytest.raises(PipelineError, match=r"pretrain\.epochs must be int, got 'ten'"):
        load_params(p)


def test_out_of_range_value_is_named(tmp_path):
    p = write(
        tmp_path,
        "datasets: {digits: {source: digits}}\ntransfer: {datasets: []}\n"
        "pretrain: {augment: {crop_scale: [0.9, 0.2]}}\n",
    )
    with pytest.raises(PipelineError, match=r"pretrain\.augment\.crop_scale"):
        load_params(p)


def test_yaml_syntax_error_gives_line(tmp_path):
    p = write(tmp_path, "pretrain:\n  epochs: [1, 2\n")
    with pytest.raises(PipelineError, match=r"not valid YAML at line \d+"):
        load_params(p)


def test_missing_file(tmp_path):
    with pytest.raises(PipelineError, match="file not found"):
        load_params(tmp_path / "nope.yaml")

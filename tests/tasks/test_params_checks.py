"""Checks across params keys (tasks/params_checks.py), run by `simclr check` before any stage:
what would pass every stage up to pretraining and fail or mislead after it."""

from __future__ import annotations

import pytest
from helpers import TINY_PARAMS, rgb_params_with

from simclr.config import Params, load_params
from simclr.errors import PipelineError
from tasks.params_checks import check_params


def _params(tmp_path, text: str) -> Params:
    (tmp_path / "params.yaml").write_text(text)
    return load_params(tmp_path / "params.yaml")


def test_a_grayscale_transfer_set_after_rgb_pretraining_is_refused_naming_the_fix(tmp_path):
    with pytest.raises(PipelineError) as e:
        check_params(_params(tmp_path, rgb_params_with("faces")))
    assert str(e.value) == (
        "params.yaml: transfer.datasets has 'faces', prepared with 1 channel(s), but the "
        "pretraining set 'photos' has 3: the encoder takes 3; set datasets.faces.channels: 3, "
        "or remove 'faces' from transfer.datasets"
    )


@pytest.mark.parametrize(
    ("transfer", "extra"),
    [
        ("faces", "  gray: {source: faces, channels: 3}\n"),  # unused extra dataset: fine
        ("", ""),  # no transfer sets
    ],
)
def test_matching_or_no_transfer_sets_pass(tmp_path, transfer, extra):
    text = rgb_params_with(transfer, extra)
    if transfer == "faces":
        text = text.replace("  faces: {source: faces}\n", "  faces: {source: faces, channels: 3}\n")
    check_params(_params(tmp_path, text))  # no error (2 replicas: a warning, tested below)


def test_an_npz_set_is_not_guessed(tmp_path):
    text = rgb_params_with("arrays", "  arrays: {source: npz, path: /data/a.npz}\n")
    check_params(_params(tmp_path, text))  # its channels are in its arrays: the stage checks


@pytest.mark.parametrize(("replicas", "said"), [("[0]", "no test over"), ("[0, 1]", "1 degree")])
def test_fewer_than_three_replicas_is_a_warning_saying_what_it_costs(tmp_path, replicas, said):
    text = TINY_PARAMS.replace("replicas: [0, 1]", f"replicas: {replicas}")
    (warning,) = check_params(_params(tmp_path, text))
    assert said in warning and "3 or more" in warning
    three = TINY_PARAMS.replace("replicas: [0, 1]", "replicas: [0, 1, 2]")
    assert check_params(_params(tmp_path, three)) == []

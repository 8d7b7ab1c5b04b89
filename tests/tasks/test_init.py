"""`simclr init` on generated image folders: the written params.yaml loads, holds every key with
its description (the comparison tests/simclr/test_config.py makes of the shipped one), names each
choice in its summary; bad input is one line, exit 2, nothing written. The measurement is the
real one (a few pretraining steps), shortened by SIMCLR_INIT_MEASURE_S."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from helpers import params_differences
from PIL import Image
from ruamel.yaml import YAML

from flows.console import main
from simclr.config import Params, load_params
from tasks.init_folder import Folder
from tasks.init_recipe import (
    CPU_BATCH,
    CPU_CROP,
    CPU_TEMPERATURE,
    FT_EPOCHS,
    FULL_FT_EPOCHS,
    PREFER_EPOCHS,
    SAFETY,
    choose,
)
from tasks.init_timing import SECONDS_VARIABLE, Timing

CHOICES = (
    "data.image_size = ",
    "data.resize = ",
    "data.channels = ",
    "model.encoder = ",
    "pretrain.batch_size = ",
    "optimizer = ",
    "pretrain.temperature = ",
    "pretrain.augment: ",
    "evaluate.finetune: ",
    "replicas = ",
    "pretrain.epochs = ",
    "transfer.datasets = ",
    "estimated run: ",
    "measured on this cpu",
)


@pytest.fixture(autouse=True)
def short_measurement(monkeypatch):
    monkeypatch.setenv(SECONDS_VARIABLE, "0.2")  # the warm-up step and one measured step


def make_folder(
    root, classes=("cat", "dog", "fish"), n=6, sizes=((16, 16),), mode="RGB", fmt="PNG"
):
    """`n` random images per class, cycling through `sizes` (width, height)."""
    rng = np.random.default_rng(0)
    bands = {"RGB": 3, "L": 1}[mode]
    for c in classes:
        (root / c).mkdir(parents=True)
        for i in range(n):
            w, h = sizes[i % len(sizes)]
            pixels = rng.integers(0, 256, (h, w, bands), dtype=np.uint8).squeeze()
            suffix = "png" if fmt == "PNG" else "jpg"
            Image.fromarray(pixels, mode).save(root / c / f"{i}.{suffix}", fmt)
    return root


def init(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = main(["init", *args])
    except SystemExit as stop:
        code = stop.code
    out = capsys.readouterr()
    return code, out.out, out.err


def check_written(path, out: str) -> Params:
    params = load_params(path)
    assert params_differences(YAML().load(path), Params) == []
    text = path.read_text()
    for choice in CHOICES:
        assert choice in out, choice
        assert f"# {choice}" in text or f"{choice}" in text  # the summary heads the file
    assert text.startswith("# simclr init: ")
    return params


def test_rgb_folder_with_a_test_folder(tmp_path, capsys):
    train = make_folder(tmp_path / "pets" / "train")
    test = make_folder(tmp_path / "pets" / "val", n=3)
    out_file = tmp_path / "params.yaml"
    code, out, err = init([str(train), "--test", str(test), "--output", str(out_file)], capsys)
    assert code == 0, err
    params = check_written(out_file, out)
    assert list(params.datasets) == ["pets"]  # named after the folder above train/
    entry = params.datasets["pets"]
    assert (entry.source, entry.root, entry.test_root) == ("imagefolder", str(train), str(test))
    assert params.pretrain.dataset == "pets" and params.transfer.datasets == ()
    assert params.data.channels == 3 and params.data.image_size == 16
    assert params.data.resize == "stretch"
    assert params.model.encoder == "small" and params.pretrain.optimizer == "sgd"
    aug = params.pretrain.augment  # 16 px: the paper's CIFAR-10 jitter strength (B.9)
    assert aug.flip_p == 0.5 and aug.jitter_strength == 0.5
    # a CPU's recipe: what benchmarks.cpu.budget_grid measured best in a fixed budget
    assert aug.crop_scale == CPU_CROP and params.pretrain.temperature == CPU_TEMPERATURE
    assert params.evaluate.finetune.crop_scale == CPU_CROP
    # fine-tuning: FT_EPOCHS passes over a subset, FULL_FT_EPOCHS over the whole split (18
    # images, one batch a pass), what matched the linear probe on CIFAR-10 photos
    ft = params.evaluate.finetune
    assert ft.epochs == FT_EPOCHS and ft.max_steps == FULL_FT_EPOCHS
    # each departure from the paper names its measurement; the small folder explains the batch
    assert "pretrain.temperature = 0.2: beat the paper's CIFAR-10 0.5 in a 10-minute" in out
    assert "not the paper's 0.08: it scored higher in a 10-minute CPU budget" in out
    assert f"(here {params.pretrain.batch_size}: the folder is small" in out
    assert params.evaluate.finetune.flip_p == 0.5
    assert params.replicas == (0, 1, 2) and params.pretrain.epochs >= 5
    assert f"wrote {out_file}" in out


def test_grayscale_jpegs_of_mixed_sizes_without_a_test_folder(tmp_path, capsys):
    sizes = ((40, 30), (30, 40), (36, 36), (50, 20))
    train = make_folder(tmp_path / "scans", ("a", "b"), n=10, sizes=sizes, mode="L", fmt="JPEG")
    out_file = tmp_path / "p.yaml"
    code, out, err = init([str(train), "--output", str(out_file), "--minutes", "60"], capsys)
    assert code == 0, err
    params = check_written(out_file, out)
    assert params.data.channels == 1 and params.data.resize == "crop"
    assert params.data.image_size == 28  # the median shorter side, 30, rounded down to a common
    assert "typical shorter side is 30 px" in out
    assert "no test folder: a seeded 20% split per class" in out
    assert params.datasets["scans"].test_root is None
    # grayscale: the embedded (grayscale) sets are transfer targets, each declared
    assert set(params.transfer.datasets) <= set(params.datasets)
    assert params.transfer.datasets == ("digits", "mnist", "faces", "textures")


def test_an_existing_file_is_kept_unless_force(tmp_path, capsys):
    train = make_folder(tmp_path / "train", ("x", "y"), n=4)
    out_file = tmp_path / "params.yaml"
    out_file.write_text("mine\n")
    code, out, err = init([str(train), "--output", str(out_file)], capsys)
    assert code == 2 and out == ""
    assert err == f"error: {out_file}: exists and is kept; pass --force to replace it\n"
    assert out_file.read_text() == "mine\n"
    code, out, err = init([str(train), "--output", str(out_file), "--force"], capsys)
    assert code == 0, err
    check_written(out_file, out)


def _bad(tmp_path) -> dict[str, tuple[list[str], str]]:
    """Each bad input: the arguments, and what its one error line says."""
    good = make_folder(tmp_path / "good", ("a", "b"), n=4)
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "x.txt").write_text("no classes here")
    single = make_folder(tmp_path / "single", ("a", "b"), n=3)
    for f in list((single / "b").iterdir())[1:]:
        f.unlink()
    broken = tmp_path / "broken"
    for c in ("a", "b"):
        (broken / c).mkdir(parents=True)
        for i in range(3):
            (broken / c / f"{i}.png").write_bytes(b"not a png at all")
    other = make_folder(tmp_path / "other", ("a", "c"), n=3)
    return {
        "missing": ([str(tmp_path / "nope")], "image folder not found"),
        "no classes": ([str(tmp_path / "flat")], "no class subfolders"),
        "one image": ([str(single)], "class has 1 image"),
        "undecodable": ([str(broken)], "none of the 6 sampled files opens as an image"),
        "zero minutes": ([str(good), "--minutes", "0"], "--minutes '0': give the run's budget"),
        "negative": ([str(good), "--minutes", "-5"], "above 0 and at most 10080"),
        "not a number": ([str(good), "--minutes", "soon"], "--minutes 'soon'"),
        "nan": ([str(good), "--minutes", "nan"], "--minutes 'nan'"),
        "over a week": ([str(good), "--minutes", "10081"], "(a week)"),
        "test classes differ": (
            [str(good), "--test", str(other)],
            "its classes differ from",
        ),
        "too short": ([str(good), "--minutes", "0.05"], "is too short for this folder"),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing",
        "no classes",
        "one image",
        "undecodable",
        "zero minutes",
        "negative",
        "not a number",
        "nan",
        "over a week",
        "test classes differ",
        "too short",
    ],
)
def test_bad_input_is_one_line_exit_2_and_nothing_written(tmp_path, capsys, case):
    args, message = _bad(tmp_path)[case]
    out_file = tmp_path / "params.yaml"
    code, out, err = init([*args, "--output", str(out_file)], capsys)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out_file.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".params.yaml")]


def test_two_classes_of_colour_and_gray_files_are_rgb(tmp_path, capsys):
    train = make_folder(tmp_path / "mixed", ("gray",), n=4, mode="L")
    make_folder(tmp_path / "mixed", ("colour",), n=4, mode="RGB")
    out_file = tmp_path / "params.yaml"
    code, out, err = init([str(train), "--output", str(out_file)], capsys)
    assert code == 0, err
    params = check_written(out_file, out)
    assert params.data.channels == 3 and "a sampled file is in colour" in out
    assert list(params.datasets) == ["mixed"] and params.transfer.datasets == ()


def _photos(counts=(5000,) * 10) -> Folder:
    classes = [f"c{i}" for i in range(len(counts))]
    return Folder(
        Path("/data/photos/train"), classes, list(counts), [(500, 375)] * 64, ["RGB"] * 64, 0
    )


def _fake(pretrain_images_per_s: float, calls: list):
    def measure(params):
        calls.append(params.data.image_size)
        scale = (params.data.image_size / 96) ** 2
        rate = pretrain_images_per_s / scale
        return Timing("cuda", "bf16", 1 / rate, 1 / (20 * rate), 5, 1.0)

    return measure


def test_an_accelerator_gets_resnet18_lars_and_the_larger_side_when_affordable():
    calls = []
    recipe = choose(_photos(), None, "cuda", 600, _fake(20_000, calls))
    p = recipe.params
    assert calls == [96, 224]  # the base side measured, then the larger one
    assert p.data.image_size == 224 and p.model.encoder == "resnet18"
    assert p.pretrain.epochs >= PREFER_EPOCHS and p.replicas == (0, 1, 2)
    assert p.evaluate.batch_size == 1024 and p.pretrain.loader_workers == 4
    assert p.pretrain.augment.blur_min_size <= 224  # blur on above 32 px
    # fast but not enough for 100 epochs at 224 px: the base side, and the summary says why
    calls = []
    recipe = choose(_photos(), None, "cuda", 30, _fake(3_000, calls))
    p = recipe.params
    assert calls == [96] and p.data.image_size == 96
    assert p.pretrain.batch_size == 512 and p.pretrain.optimizer == "lars"
    assert p.pretrain.lr == 0.3 and p.pretrain.lr_scaling == "linear"
    # the paper's CIFAR-10 temperature and crop: the CPU's measured recipe is for its budgets
    assert p.pretrain.temperature == 0.5 and p.pretrain.augment.crop_scale == (0.08, 1.0)
    said = "\n".join(recipe.lines)
    assert "pretrain.temperature = 0.5: the paper's CIFAR-10 setting" in said
    assert "CPU budget" not in said  # the CPU's measured recipe is not claimed here
    assert "224 px would get under 100 epochs" in recipe.lines[0]


def test_a_slow_machine_trades_replicas_for_epochs_and_says_what_that_costs():
    def slow(params):
        return Timing("cpu", "fp32", 1 / 40, 1 / 400, 3, 1.0)

    folder = _photos((1000,) * 10)
    said = {}
    for minutes in (60, 90, 240):  # 40 images/s: about 4 minutes an epoch of 8,000 images
        recipe = choose(folder, None, "cpu", minutes, slow)
        said[len(recipe.params.replicas)] = "\n".join(recipe.lines)
        assert recipe.params.pretrain.epochs >= 5
        assert recipe.params.pretrain.batch_size == CPU_BATCH
        assert sum(recipe.seconds.values()) <= minutes * 60 * SAFETY
    assert "2 degrees of freedom" in said[3]
    assert "with 2 the test over replicas has 1 degree of freedom" in said[2]
    assert "with 1 there is no test over replicas" in said[1]

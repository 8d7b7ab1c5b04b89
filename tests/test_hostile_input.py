"""Bad input a hostile or unlucky user brings (issue 23): nothing silently lost or distorted,
and every refusal one line naming the file, key or value. Images and arrays are made here;
the stage commands run for real where the entry point is what is under test."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from helpers import tiny_prepared
from PIL import Image

from flows.errors import explain
from simclr.config import DataConfig, DatasetConfig, load_params
from simclr.data.arrays import load_npz
from simclr.data.imagefolder import decode, load_image_folder
from simclr.data.prepared import load_manifest, load_prepared, save_prepared
from simclr.errors import PipelineError
from simclr.io import write_json
from tasks.sources import load_dataset


def noise(path: Path, seed: int, size: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
    return path


# --- images: no silent loss, no silent distortion ---------------------------------------------


def test_a_32_bit_integer_image_beyond_16_bits_is_refused_naming_its_range(tmp_path):
    deep = tmp_path / "deep.tiff"
    Image.fromarray(np.linspace(0, 1_000_000, 64, dtype=np.int32).reshape(8, 8), "I").save(deep)
    with pytest.raises(PipelineError) as e:
        decode(deep, "L", None)
    assert str(e.value) == (
        f"{deep}: cannot decode image (32-bit integer (mode I) image with values 0..1000000, "
        "beyond 16 bits, is not supported; save it as 8- or 16-bit grayscale); replace or "
        "delete the file"
    )
    within = tmp_path / "within.tiff"  # a 32-bit file holding 16-bit values: scaled as 16 bits
    Image.fromarray(np.full((8, 8), 40000, np.int32), "I").save(within)
    assert (decode(within, "L", None) == round(40000 / 257)).all()


def test_images_in_sub_folders_are_read_with_the_top_folder_as_their_class(tmp_path):
    for c in ("cat", "dog"):
        for i in range(10):
            noise(tmp_path / c / f"{i}.png", hash((c, i)) % 999)
        for i in range(30):
            noise(tmp_path / c / "2019" / "summer" / f"{i}.png", hash((c, i, 1)) % 999)
    (tmp_path / "cat" / ".thumbnails").mkdir()
    noise(tmp_path / "cat" / ".thumbnails" / "x.png", 1)  # hidden: never an image
    folder = load_image_folder(tmp_path, workers=2)
    assert len(folder.paths) == 80 and folder.classes == ["cat", "dog"]
    assert folder.labels.tolist() == [0] * 40 + [1] * 40
    assert [p.split("/")[0] for p in folder.paths] == ["cat"] * 40 + ["dog"] * 40
    assert "cat/2019/summer/29.png" in folder.paths


def test_a_link_back_up_the_tree_and_a_fifo_named_like_an_image_are_not_followed(tmp_path):
    noise(tmp_path / "cat" / "a.png", 0)
    noise(tmp_path / "dog" / "b.png", 1)
    (tmp_path / "cat" / "loop").symlink_to(tmp_path / "cat")  # would recurse forever
    os.mkfifo(tmp_path / "dog" / "pipe.png")  # reading it would block forever
    assert load_image_folder(tmp_path, workers=1).paths == ["cat/a.png", "dog/b.png"]


def test_images_beside_the_class_folders_are_refused_with_their_count(tmp_path):
    noise(tmp_path / "cat" / "a.png", 0)
    noise(tmp_path / "stray1.png", 1)
    noise(tmp_path / "stray2.jpg", 2)
    with pytest.raises(PipelineError, match="2 image files lie beside the class folders"):
        load_image_folder(tmp_path)


def test_names_that_are_not_utf8_are_refused_before_any_decoding(tmp_path):
    for i in range(3):
        noise(tmp_path / "cat" / f"{i}.png", i)
    noise(tmp_path / "dog" / "x.png", 9)
    os.rename(bytes(tmp_path / "cat" / "0.png"), bytes(tmp_path / "cat") + b"/caf\xe9.png")
    os.rename(bytes(tmp_path / "dog"), bytes(tmp_path) + b"/d\xf6g")
    with pytest.raises(PipelineError) as e:
        load_image_folder(tmp_path)
    line = str(e.value)
    assert line.startswith(f"{tmp_path}: 3 file or folder names are not UTF-8 (e.g. ")
    assert f"(e.g. {tmp_path}/d\\xf6g)" in line and "rename them to UTF-8" in line
    line.encode("utf-8")  # the message itself can be printed and logged


def damaged_dds(path: Path) -> Path:
    """A DDS file whose pixel format flags name no format: Pillow raises NotImplementedError."""
    Image.new("RGB", (8, 8), (1, 2, 3)).save(path)
    data = bytearray(path.read_bytes())
    data[80:84] = bytes(4)
    path.write_bytes(bytes(data))
    return path


def test_a_damaged_dds_is_undecodable_and_skip_corrupt_drops_it(tmp_path):
    noise(tmp_path / "cat" / "a.png", 0)
    noise(tmp_path / "dog" / "b.png", 1)
    bad = damaged_dds(tmp_path / "cat" / "bad.dds")
    with pytest.raises(PipelineError, match=r"bad\.dds: cannot decode image \(Unknown pixel"):
        load_image_folder(tmp_path, workers=1)
    lenient = load_image_folder(tmp_path, workers=1, strict=False)
    assert [(p, label) for p, label, _ in lenient.rejected] == [("cat/bad.dds", 0)]
    assert bad.exists() and len(lenient.paths) == 2


# --- arrays and prepared data -------------------------------------------------------------------


def npy_bytes(x: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, x)
    return buffer.getvalue()


NPZ = {
    "no images": (
        lambda p: np.savez(p, images=np.zeros((0, 8, 8), np.uint8), labels=np.zeros(0, int)),
        "images has shape (0, 8, 8, 1): no images",
    ),
    "images of no pixels": (
        lambda p: np.savez(p, images=np.zeros((20, 0, 0), np.uint8), labels=np.arange(20) % 2),
        "images has shape (20, 0, 0, 1): no images, or images of no pixels",
    ),
    "a .npy, not an .npz": (
        lambda p: p.write_bytes(npy_bytes(np.zeros((20, 8, 8), np.uint8))),
        "a single array, not an .npz archive",
    ),
    "truncated": (
        lambda p: p.write_bytes(b"PK\x03\x04" + bytes(30)),
        "not a readable .npz file",
    ),
}


@pytest.mark.parametrize("case", NPZ)
def test_npz_files_that_hold_no_usable_images_are_one_line(tmp_path, case):
    make, message = NPZ[case]
    path = tmp_path / "arrays.npz"
    make(path)
    with pytest.raises(PipelineError) as e:
        load_npz(path)
    assert str(e.value).startswith(f"{path}: ") and message in str(e.value)


def truncate(path: Path, keep: int = 200) -> None:
    path.write_bytes(path.read_bytes()[:keep])


DAMAGE = {
    "truncated images.npy": ("train/images.npy", truncate),
    "truncated labels.npy": ("test/labels.npy", lambda p: truncate(p, 100)),
    "labels of another split": ("train/labels.npy", lambda p: np.save(p, np.zeros(3, int))),
    "garbage classes.json": ("classes.json", lambda p: p.write_text("[not json")),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_damaged_prepared_data_is_one_line_naming_the_file(tmp_path, case):
    root = save_prepared(tiny_prepared(12, 6), tmp_path / "prepared")
    name, damage = DAMAGE[case]
    damage(root / name)
    with pytest.raises(PipelineError) as e:
        load_prepared(root)
    assert str(e.value).startswith(f"{root / name}: damaged prepared data (")
    assert "re-run the prepare stage" in explain(e.value)


def test_a_truncated_manifest_is_one_line_naming_it(tmp_path):
    root = save_prepared(tiny_prepared(12, 6), tmp_path / "prepared")
    truncate(root / "manifest.parquet", 100)
    with pytest.raises(PipelineError, match=r"manifest\.parquet: damaged prepared data"):
        load_manifest(root)


# --- one class, strict JSON -------------------------------------------------------------------


def test_a_dataset_of_one_class_fails_validation_and_is_refused_by_evaluate(tmp_path, monkeypatch):
    from tasks.evaluate import load_checked
    from tasks.validate import Suites, summary_line, validate_manifest

    for i in range(12):
        noise(tmp_path / "img" / "cat" / f"{i}.png", i)
    params = tmp_path / "params.yaml"
    params.write_text(
        f"datasets: {{pets: {{source: imagefolder, root: {tmp_path / 'img'}}}}}\n"
        "validate: {min_rows: 4, min_per_class: 1}\n"
        "pretrain: {dataset: pets}\ntransfer: {datasets: []}\n"
    )
    p = load_params(params)
    monkeypatch.chdir(tmp_path)
    cfg = p.datasets["pets"]
    from simclr.data.prepared import split_source

    prepared = split_source(load_dataset(cfg, cfg.options(p.data), 0), 0.25, 0)
    root = save_prepared(prepared, Path("data/prepared/pets"))
    suites = Suites.create()
    try:
        report = validate_manifest("pets", p, load_manifest(root), ["cat"], suites)
    finally:
        suites.discard()
    failed = [o["check"] for o in report["expectations"] if not o["success"]]
    assert failed == ["at least 2 classes"]
    assert "at least 2 classes: failed, observed 1" in summary_line(report)
    with pytest.raises(PipelineError, match="1 class; evaluation needs at least 2 classes"):
        load_checked("pets", tmp_path / "no-checkpoint.pt", "cpu")


def test_json_we_write_is_strict(tmp_path):
    from tasks.validate import _plain

    with pytest.raises(ValueError, match=r"details\.json: Out of range float values"):
        write_json(tmp_path / "details.json", {"C": float("nan")})
    assert not (tmp_path / "details.json").exists()
    plain = _plain(
        {"ratio": float("inf"), "x": np.float64("nan"), "n": np.int64(3), "f": "NaN.jpg"}
    )
    assert plain == {"ratio": None, "x": None, "n": 3, "f": "NaN.jpg"}  # a name is kept as is
    json.loads(json.dumps(plain, allow_nan=False))


# --- figures ------------------------------------------------------------------------------------


def test_class_names_with_dollar_signs_are_drawn_literally(tmp_path):
    from tasks.figures.evaluation import confusion, embedding
    from tasks.figures.report import sample_grid

    classes = ["$\\foo$", "$x^2$", "a$b", "50$"]
    labels = np.arange(8) % 4
    points = np.random.default_rng(0).normal(size=(8, 2))
    embedding(points, labels, classes, "t", tmp_path / "e.png")
    confusion(labels, labels[::-1], classes, "c", tmp_path / "c.png")
    images = np.zeros((8, 8, 8, 1), np.uint8)
    sample_grid({"pets": (images, labels, classes)}, tmp_path / "s.png", per_dataset=4)
    for name in ("e.png", "c.png", "s.png"):
        with Image.open(tmp_path / name) as img:
            img.load()


# --- params: an upper bound on what multiplies memory; files that are not params -------------


def test_params_that_multiply_memory_have_an_upper_bound_a_real_gpu_run_stays_under(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text(
        "data: {image_size: 224}\n"
        "model: {encoder: resnet50, width: 4, proj_hidden_dim: 8192, proj_dim: 128}\n"
        "pretrain: {batch_size: 4096, loader_workers: 8, distributed: {nproc_per_node: 8}}\n"
        "evaluate: {batch_size: 4096}\n"
    )
    load_params(path)  # ImageNet on 8 GPUs, the paper's ResNet-50 (4x)
    for text, line in [
        ("data: {image_size: 20000}", "data.image_size = 20000; allowed: an integer in [4, 1024]"),
        ("pretrain: {batch_size: 1000000000}", "pretrain.batch_size = 1000000000; allowed: an"),
        ("model: {proj_dim: 1000000}", "model.proj_dim = 1000000; allowed: an integer in (0,"),
        ("model: {widths: [64, 100000]}", "model.widths[1] = 100000; allowed: an integer in"),
        ("datasets: {x: {source: digits, image_size: 5000}}\npretrain: {dataset: x}\n"
         "transfer: {datasets: []}", "datasets.x.image_size = 5000; allowed: an integer in"),
    ]:  # fmt: skip
        path.write_text(text + "\n")
        with pytest.raises(PipelineError) as e:
            load_params(path)
        assert line in str(e.value)


def test_an_unreadable_image_folder_is_one_line(tmp_path):
    noise(tmp_path / "img" / "cat" / "a.png", 0)
    os.chmod(tmp_path / "img", 0)
    try:
        cfg = DatasetConfig(source="imagefolder", root=str(tmp_path / "img"))
        if os.geteuid() == 0:  # root reads anything: /proc holds what even root may not list
            cfg = DatasetConfig(source="imagefolder", root="/proc")
        with pytest.raises(PipelineError) as e:
            load_dataset(cfg, DataConfig(image_size=8), 0)
    finally:
        os.chmod(tmp_path / "img", 0o755)
    assert ": cannot list the image folder: Permission denied (" in str(e.value)
    assert "check its permissions" in explain(e.value)

"""Dataset sources: torchvision's CIFAR/STL-10 formats (tiny files written in those formats),
.npz arrays, image folders through load_dataset, and the shared conversions."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from flows.errors import explain
from simclr.config import DataConfig, DatasetConfig
from simclr.data.archives import load_cifar, load_stl10
from simclr.data.arrays import load_npz
from simclr.data.prepared import load_prepared, save_prepared, split_source
from simclr.data.source import UNLABELED, fit_size, to_channels
from simclr.errors import PipelineError
from tasks.sources import load_dataset


@pytest.fixture
def no_md5(monkeypatch):
    """torchvision checks each file against the real archives' md5; these files are tiny fakes
    in the same format, so only the existence check stays."""
    from torchvision.datasets import CIFAR10, CIFAR100, STL10

    for cls in (CIFAR10, CIFAR100, STL10):
        for name in ("train_list", "test_list"):
            monkeypatch.setattr(cls, name, [[f, None] for f, _ in getattr(cls, name)])
    for cls in (CIFAR10, CIFAR100):
        monkeypatch.setattr(cls, "meta", {**cls.meta, "md5": None})


def fake_cifar10(root, per_batch=4):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        entry = {
            "data": rng.integers(0, 256, (per_batch, 3 * 32 * 32), dtype=np.uint8),
            "labels": list(rng.integers(0, 10, per_batch)),
        }
        (folder / name).write_bytes(pickle.dumps(entry))
    names = ["airplane", "automobile", "bird", "cat", "deer"]
    names += ["dog", "frog", "horse", "ship", "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return folder


def test_cifar10_in_torchvisions_format(tmp_path, no_md5):
    folder = fake_cifar10(tmp_path)
    s = load_cifar("cifar10", tmp_path)
    assert s.images.shape == (24, 32, 32, 3) and s.images.dtype == np.uint8
    assert s.class_names[3] == "cat" and list(s.split).count("test") == 4
    first = pickle.loads((folder / "data_batch_1").read_bytes())
    # CHW rows become HWC images, in file order.
    expected = first["data"][0].reshape(3, 32, 32).transpose(1, 2, 0)
    assert np.array_equal(s.images[0], expected) and s.labels[0] == first["labels"][0]


def test_cifar_missing_is_one_clear_error(tmp_path):
    with pytest.raises(PipelineError, match=r"CIFAR-10 not found or incomplete") as e:
        load_cifar("cifar10", tmp_path / "nowhere")
    advice = "or set download: true for this dataset in params.yaml (needs network)"
    assert explain(e.value).endswith(advice)
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(b"half a download")
    with pytest.raises(PipelineError, match="md5"):
        load_cifar("cifar10", tmp_path)


def fake_stl10(root, n=(3, 4, 5)):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(1)
    for name, count in zip(("train", "test", "unlabeled"), n, strict=True):
        rng.integers(0, 256, count * 3 * 96 * 96, dtype=np.uint8).tofile(folder / f"{name}_X.bin")
        if name != "unlabeled":
            (rng.integers(0, 10, count, dtype=np.uint8) + 1).tofile(folder / f"{name}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"c{i}" for i in range(10)))
    return folder


def test_stl10_with_its_unlabelled_split(tmp_path, no_md5):
    folder = fake_stl10(tmp_path)
    s = load_stl10(tmp_path, unlabeled=True)
    assert s.images.shape == (12, 96, 96, 3)
    assert list(s.split) == ["train"] * 3 + ["test"] * 4 + ["unlabeled"] * 5
    assert (s.labels[s.split == "unlabeled"] == UNLABELED).all()
    raw = np.fromfile(folder / "train_y.bin", dtype=np.uint8)
    assert s.labels[:3].tolist() == (raw - 1).tolist()
    # STL-10 stores each image column-major: pixel (row 0, col 1) is the file's second column.
    x = np.fromfile(folder / "train_X.bin", dtype=np.uint8).reshape(-1, 3, 96, 96)
    assert s.images[0, 0, 1, 0] == x[0, 0, 1, 0]
    assert len(load_stl10(tmp_path).labels) == 7  # without unlabeled


def test_unlabelled_split_is_prepared_and_used_for_pretraining(tmp_path, no_md5):
    fake_stl10(tmp_path, n=(20, 20, 30))
    cfg = DatasetConfig(source="stl10", root=str(tmp_path), unlabeled=True)
    source = load_dataset(cfg, DataConfig(image_size=24), seed=0)
    p = save_prepared(split_source(source, 0.2, 0), tmp_path / "prepared")
    q = load_prepared(p)
    assert q.unlabeled is not None and q.unlabeled.images.shape == (30, 24, 24, 3)
    assert q.pretraining is q.unlabeled and len(q.train.labels) == 20


def test_npz_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (30, 10, 10), dtype=np.uint8)
    y = np.repeat([3, 5, 9], 10)
    np.savez(tmp_path / "a.npz", images=x, labels=y)
    a = load_npz(tmp_path / "a.npz")
    assert a.images.shape == (30, 10, 10, 1) and a.split is None
    assert a.class_names == ("3", "5", "9") and a.labels.tolist() == [0] * 10 + [1] * 10 + [2] * 10
    np.savez(
        tmp_path / "b.npz",
        x_train=x[:20, ..., None].repeat(3, -1),
        y_train=y[:20] // 3,
        x_test=x[20:, ..., None].repeat(3, -1),
        y_test=y[20:] // 3,
        class_names=np.array(["a", "b", "c", "d"]),
    )
    b = load_npz(tmp_path / "b.npz")
    assert b.images.shape == (30, 10, 10, 3) and b.class_names == ("a", "b", "c", "d")
    assert list(b.split).count("test") == 10 and b.labels[-1] == 3


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"pixels": np.zeros((2, 4, 4), np.uint8)}, "expected x_train, y_train"),
        ({"images": np.zeros((2, 4, 4), np.float32), "labels": np.zeros(2, int)}, "uint8"),
        ({"images": np.zeros((2, 3, 4, 4), np.uint8), "labels": np.zeros(2, int)}, "channels"),
        ({"images": np.zeros((2, 4, 4), np.uint8), "labels": np.zeros(3, int)}, "2 integer labels"),
    ],
)
def test_npz_bad_contents_are_clear_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(PipelineError, match=message):
        load_npz(tmp_path / "bad.npz")


def test_npz_missing_or_not_npz(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load_npz(tmp_path / "none.npz")
    (tmp_path / "x.npz").write_text("hello")
    with pytest.raises(PipelineError, match="not a readable .npz"):
        load_npz(tmp_path / "x.npz")


def test_grayscale_conversion_matches_pillow():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 9, 3), dtype=np.uint8)
    gray = to_channels(rgb, 1)
    pil = np.stack([np.asarray(Image.fromarray(img).convert("L")) for img in rgb])
    assert np.abs(gray[..., 0].astype(int) - pil).max() <= 1
    assert np.array_equal(to_channels(gray, 3), np.repeat(gray, 3, axis=-1))
    with pytest.raises(PipelineError, match="4 channels"):
        to_channels(np.zeros((1, 2, 2, 4), np.uint8), 3)


def test_resize_policies_keep_or_stretch_the_aspect_ratio():
    wide = np.zeros((1, 10, 20, 1), np.uint8)
    wide[:, :, :5] = 255  # a white band on the left quarter
    stretched, cropped = fit_size(wide, 10, "stretch"), fit_size(wide, 10, "crop")
    assert stretched.shape == cropped.shape == (1, 10, 10, 1)
    assert stretched[0, 5, 0, 0] == 255  # squeezed band still at the left edge
    assert cropped[0, 5, :, 0].max() == 0  # the centre crop cuts the band away


def image_folder(root, sizes):
    for c, size in zip(("a", "b"), sizes, strict=True):
        (root / c).mkdir(parents=True)
        for i in range(4):
            pixels = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), np.uint8)
            Image.fromarray(pixels).save(root / c / f"{i}.png")


def test_image_folder_mixed_sizes_are_resized_and_gray_converted(tmp_path):
    image_folder(tmp_path / "train", [(20, 10), (7, 9)])
    cfg = DatasetConfig(source="imagefolder", root=str(tmp_path / "train"))
    s = load_dataset(cfg, DataConfig(image_size=8, channels=1, resize="crop"), seed=0)
    assert s.images.shape == (8, 8, 8, 1) and s.split is None
    assert s.paths[0].endswith("train/a/0.png") and s.class_names == ("a", "b")


def test_image_folder_paths_are_one_object_array_shared_by_the_splits(tmp_path):
    image_folder(tmp_path / "train", [(8, 8), (8, 8)])
    image_folder(tmp_path / "test", [(8, 8), (8, 8)])
    cfg = DatasetConfig(
        source="imagefolder", root=str(tmp_path / "train"), test_root=str(tmp_path / "test")
    )
    s = load_dataset(cfg, DataConfig(image_size=8), seed=0)
    folders = [tmp_path / r / c for r in ("train", "test") for c in "ab"]
    assert s.paths.dtype == object
    assert list(s.paths) == [str(f / f"{i}.png") for f in folders for i in range(4)]
    # Splitting copies pointers to the same strings, not the text (memory per image).
    test = split_source(s, 0.25, 0).test
    assert all(any(p is q for q in s.paths) for p in test.paths)


def test_image_folder_test_root_needs_the_same_classes(tmp_path):
    image_folder(tmp_path / "train", [(8, 8), (8, 8)])
    (tmp_path / "test" / "a").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "test" / "a" / "x.png")
    cfg = DatasetConfig(
        source="imagefolder", root=str(tmp_path / "train"), test_root=str(tmp_path / "test")
    )
    with pytest.raises(PipelineError, match="differ from those of"):
        load_dataset(cfg, DataConfig(image_size=8), seed=0)

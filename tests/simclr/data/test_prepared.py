"""prepare streaming: an image folder decoded into a file and an npz read by memory map give the
same bytes as the in-memory path, with threads or processes, and a failed prepare leaves
nothing behind."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import simclr.data.imagefolder as imagefolder
from simclr.config import DataConfig, DatasetConfig
from simclr.data.arrays import load_npz
from simclr.data.prepared import SCRATCH, prepare, save_prepared, skip_rejected, split_source
from tasks.sources import load_dataset


def _folder(root, per_class=12, classes=3, corrupt=True):
    rng = np.random.default_rng(0)
    for c in range(classes):
        (root / f"c{c}").mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (10 + c, 12, 3), dtype=np.uint8)  # sizes differ
            Image.fromarray(pixels).save(root / f"c{c}" / f"{i:02d}.png")
    if corrupt:
        (root / "c1" / "zz.png").write_bytes(b"not an image")
    return root


def _files(root):
    return {p.relative_to(root): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _both_ways(tmp_path, cfg: DatasetConfig, opts: DataConfig):
    """(streamed prepare's files, in-memory split + save's files) of one dataset."""
    streamed = prepare(
        tmp_path / "streamed", lambda s: load_dataset(cfg, opts, 0, s), 0.25, 0, skip_corrupt=True
    )
    assert isinstance(streamed.train.images, np.memmap)
    assert not (tmp_path / "streamed" / SCRATCH).exists()
    in_memory = skip_rejected(split_source(load_dataset(cfg, opts, 0), 0.25, 0))
    save_prepared(in_memory, tmp_path / "in_memory")
    return _files(tmp_path / "streamed"), _files(tmp_path / "in_memory")


@pytest.mark.parametrize("processes", [False, True])
def test_a_streamed_image_folder_prepares_the_same_bytes_as_in_memory(
    tmp_path, monkeypatch, processes
):
    if processes:  # the process pool that large folders get, on this small one
        monkeypatch.setattr(imagefolder, "PROCESSES_FROM", 1)
    cfg = DatasetConfig(source="imagefolder", root=str(_folder(tmp_path / "src")))
    streamed, in_memory = _both_ways(tmp_path, cfg, DataConfig(image_size=8, workers=2))
    assert streamed.keys() == in_memory.keys() and "skipped.json" in {p.name for p in streamed}
    assert streamed == in_memory


def test_a_train_and_a_test_folder_stream_into_one_file_in_order(tmp_path):
    train = _folder(tmp_path / "train", corrupt=False)
    test = _folder(tmp_path / "test", per_class=4, corrupt=False)
    cfg = DatasetConfig(source="imagefolder", root=str(train), test_root=str(test))
    streamed, in_memory = _both_ways(tmp_path, cfg, DataConfig(image_size=8, workers=1))
    assert streamed == in_memory


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed])
def test_an_npz_is_memory_mapped_where_stored_and_prepares_the_same_bytes(tmp_path, save):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (40, 12, 12, 3), dtype=np.uint8),
        "y_train": np.arange(40) % 4,
        "x_test": rng.integers(0, 256, (20, 12, 12, 3), dtype=np.uint8),
        "y_test": np.arange(20) % 4,
    }
    save(tmp_path / "a.npz", **arrays)
    save(tmp_path / "one.npz", images=arrays["x_train"], labels=arrays["y_train"])
    one = load_npz(tmp_path / "one.npz", tmp_path / "scratch")
    np.testing.assert_array_equal(one.images, arrays["x_train"])
    assert isinstance(one.images, np.memmap) == (save is np.savez)  # compressed: read
    two = load_npz(tmp_path / "a.npz", tmp_path / "scratch")
    np.testing.assert_array_equal(two.images, np.concatenate([arrays["x_train"], arrays["x_test"]]))
    assert isinstance(two.images, np.memmap)  # joined into the scratch file, chunk by chunk
    cfg = DatasetConfig(source="npz", path=str(tmp_path / "a.npz"))
    for opts in (DataConfig(image_size=12, channels=3), DataConfig(image_size=8, channels=1)):
        streamed, in_memory = _both_ways(tmp_path / str(opts.image_size), cfg, opts)
        assert streamed == in_memory


def test_a_prepare_that_fails_after_decoding_leaves_no_output(tmp_path):
    cfg = DatasetConfig(source="imagefolder", root=str(_folder(tmp_path / "src")))

    def load_then_fail(scratch):
        load_dataset(cfg, DataConfig(image_size=8, workers=1), 0, scratch)
        assert any(scratch.iterdir())  # the decoded images were written there
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        prepare(tmp_path / "out", load_then_fail, 0.25, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]

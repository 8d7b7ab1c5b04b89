import hashlib
import json

import numpy as np
import pytest

from flows.errors import explain
from simclr.data.embedded import load_source, load_textures
from simclr.data.prepared import (
    MANIFEST_COLUMNS,
    load_manifest,
    load_prepared,
    read_rows,
    save_prepared,
    split_source,
)
from simclr.data.source import Source, fit_size
from simclr.errors import PipelineError


def sized(source: Source, size: int) -> Source:
    return Source(fit_size(source.images, size), source.labels, source.class_names, source.split)


@pytest.mark.parametrize(
    ("name", "count", "shape", "classes"),
    [
        ("digits", 1797, (8, 8, 1), 10),
        ("mnist", 5000, (28, 28, 1), 10),
        ("faces", 196, (25, 25, 1), 2),
        ("textures", 600, (48, 48, 1), 3),
    ],
)
def test_embedded_sources_load_offline(name, count, shape, classes):
    s = load_source(name, seed=0)
    assert s.images.dtype == np.uint8 and s.images.shape == (count, *shape)
    assert len(s.class_names) == classes and set(np.unique(s.labels)) == set(range(classes))
    assert s.images.std() > 10  # real pixels, not blank
    per_image = s.images.reshape(count, -1).std(axis=1)
    assert per_image.min() >= 2.0  # no blank image (faces drops its 4 blank patches)


def test_unknown_source_names_the_allowed_ones():
    with pytest.raises(PipelineError, match="allowed: digits, faces, mnist, textures"):
        load_source("cifar", 0)


def test_split_is_stratified_seeded_and_resized():
    s = sized(load_source("mnist", 0), 16)
    a = split_source(s, 0.2, seed=1)
    b = split_source(s, 0.2, seed=1)
    c = split_source(s, 0.2, seed=2)
    assert np.array_equal(a.train.labels, b.train.labels)
    assert not np.array_equal(a.train.labels, c.train.labels)
    assert a.train.images.shape[1:] == (16, 16, 1)
    assert np.bincount(a.test.labels).tolist() == [100] * 10  # stratified: 20% of 500 each
    # The source is sorted by class; the split must not be.
    assert len(np.unique(a.train.labels[:200])) == 10


def test_textures_split_comes_from_disjoint_regions():
    s = load_textures(seed=0)
    train = {img.tobytes() for img in s.images[s.split == "train"]}
    test = {img.tobytes() for img in s.images[s.split == "test"]}
    assert not train & test
    p = split_source(s, 0.2, seed=0)
    assert len(p.train.labels) == 480 and len(p.test.labels) == 120


def test_max_per_class_caps_each_class():
    p = split_source(load_source("digits", 0), 0.5, seed=0, max_per_class=10)
    counts = np.bincount(np.concatenate([p.train.labels, p.test.labels]))
    assert counts.tolist() == [10] * 10


def test_fraction_keeps_that_share_of_every_class_and_at_least_one():
    s = load_source("digits", 0)
    p = split_source(s, 0.5, seed=0, fraction=0.1)
    counts = np.bincount(np.concatenate([p.train.labels, p.test.labels]))
    assert counts.tolist() == [round(0.1 * n) for n in np.bincount(s.labels)]  # sampling.py
    q = split_source(load_textures(seed=0), 0.2, seed=0, fraction=0.001)  # fixed split
    assert np.bincount(q.test.labels).tolist() == [1, 1, 1]


def test_a_class_with_one_image_cannot_be_split():
    s = load_source("faces", 0)
    keep = np.r_[np.flatnonzero(s.labels == 0), np.flatnonzero(s.labels == 1)[:1]]
    one = Source(s.images[keep], s.labels[keep], s.class_names)
    with pytest.raises(PipelineError, match="class 'non-face' has a single image"):
        split_source(one, 0.2, seed=0)


def test_save_load_roundtrip_and_manifest(tmp_path):
    p = split_source(sized(load_source("faces", 0), 12), 0.25, seed=0)
    root = save_prepared(p, tmp_path / "faces")
    q = load_prepared(root)
    assert np.array_equal(np.asarray(q.train.images), p.train.images)
    assert isinstance(q.train.images, np.memmap)
    assert json.loads((root / "classes.json").read_text()) == ["face", "non-face"]
    m = load_manifest(root)
    assert len(m) == 196 and set(m["split"]) == {"train", "test"}
    assert tuple(m.columns) == MANIFEST_COLUMNS  # the declared columns, in their order
    assert (m["height"] == 12).all() and m["error"].isna().all() and m["source"].isna().all()
    row = m[(m["split"] == "test") & (m["index"] == 3)].iloc[0]
    img = p.test.images[3].astype(np.float64)
    assert row["label"] == p.test.labels[3] and row["channels"] == 1 and row["width"] == 12
    assert row["sha256"] == hashlib.sha256(p.test.images[3].tobytes()).hexdigest()
    assert row["pixel_mean"] == pytest.approx(img.mean()) and row["pixel_std"] == pytest.approx(
        img.std()
    )


def test_failed_write_leaves_previous_dataset_intact(tmp_path, monkeypatch):
    p = split_source(load_source("faces", 0), 0.25, seed=0)
    root = save_prepared(p, tmp_path / "faces")
    before = sorted(x.name for x in tmp_path.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("simclr.data.prepared.manifest", boom)
    with pytest.raises(OSError):
        save_prepared(p, root)
    assert sorted(x.name for x in tmp_path.iterdir()) == before  # no temp dir left behind
    assert len(load_manifest(root)) == 196


def test_missing_prepared_dataset_says_what_to_do(tmp_path):
    with pytest.raises(PipelineError, match="no prepared dataset here$") as e:
        load_prepared(tmp_path / "nothing")
    advice = "no prepared dataset here; run `dvc repro` (or the prepare stage) first"
    assert explain(e.value).endswith(advice)


def test_read_rows_copies_and_drops_the_mapped_pages(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (4096, 32, 32, 3), dtype=np.uint8)
    np.save(tmp_path / "x.npy", images)
    mapped = np.load(tmp_path / "x.npy", mmap_mode="r")

    def resident_kb() -> int:  # this process's file-backed resident memory
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("RssFile:"))

    before = resident_kb()
    total = 0
    for i in range(0, len(mapped), 256):
        rows = read_rows(mapped, slice(i, i + 256))
        assert np.array_equal(rows, images[i : i + 256]) and not isinstance(rows, np.memmap)
        total += int(rows.sum() > 0)
    # The 12 MB file was read in full, yet no more than a batch of it stays mapped in.
    assert total == 16 and resident_kb() - before < 2048
    plain = np.asarray(mapped[np.array([5, 1, 3])])
    assert np.array_equal(read_rows(mapped, np.array([5, 1, 3])), plain)

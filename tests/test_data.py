import json

import numpy as np
import pytest

from simclr.data.embedded import load_source, load_textures
from simclr.data.prepared import (
    load_manifest,
    load_prepared,
    save_prepared,
    split_source,
)
from simclr.errors import PipelineError


@pytest.mark.parametrize(
    ("name", "count", "shape", "classes"),
    [
        ("digits", 1797, (8, 8, 1), 10),
        ("mnist", 5000, (28, 28, 1), 10),
        ("faces", 200, (25, 25, 1), 2),
        ("textures", 600, (48, 48, 1), 3),
    ],
)
def test_embedded_sources_load_offline(name, count, shape, classes):
    s = load_source(name, seed=0)
    assert s.images.dtype == np.uint8 and s.images.shape == (count, *shape)
    assert len(s.class_names) == classes and set(np.unique(s.labels)) == set(range(classes))
    assert s.images.std() > 10  # real pixels, not blank


def test_unknown_source_names_the_allowed_ones():
    with pytest.raises(PipelineError, match="allowed: digits, faces, mnist, textures"):
        load_source("cifar", 0)


def test_split_is_stratified_seeded_and_resized():
    s = load_source("mnist", 0)
    a = split_source(s, 16, 0.2, seed=1)
    b = split_source(s, 16, 0.2, seed=1)
    c = split_source(s, 16, 0.2, seed=2)
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
    p = split_source(s, 16, 0.2, seed=0)
    assert len(p.train.labels) == 480 and len(p.test.labels) == 120


def test_max_per_class_caps_each_class():
    p = split_source(load_source("digits", 0), 8, 0.5, seed=0, max_per_class=10)
    counts = np.bincount(np.concatenate([p.train.labels, p.test.labels]))
    assert counts.tolist() == [10] * 10


def test_save_load_roundtrip_and_manifest(tmp_path):
    p = split_source(load_source("faces", 0), 12, 0.25, seed=0)
    root = save_prepared(p, tmp_path / "faces")
    q = load_prepared(root)
    assert np.array_equal(np.asarray(q.train.images), p.train.images)
    assert isinstance(q.train.images, np.memmap)
    assert json.loads((root / "classes.json").read_text()) == ["face", "non-face"]
    m = load_manifest(root)
    assert len(m) == 200 and set(m["split"]) == {"train", "test"}
    assert set(m.columns) >= {
        "split",
        "index",
        "label",
        "height",
        "width",
        "channels",
        "pixel_mean",
        "pixel_std",
        "sha256",
    }
    assert (m["height"] == 12).all()


def test_failed_write_leaves_previous_dataset_intact(tmp_path, monkeypatch):
    p = split_source(load_source("faces", 0), 12, 0.25, seed=0)
    root = save_prepared(p, tmp_path / "faces")
    before = sorted(x.name for x in tmp_path.iterdir())

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr("simclr.data.prepared.manifest", boom)
    with pytest.raises(OSError):
        save_prepared(p, root)
    assert sorted(x.name for x in tmp_path.iterdir()) == before  # no temp dir left behind
    assert len(load_manifest(root)) == 200


def test_missing_prepared_dataset_says_what_to_do(tmp_path):
    with pytest.raises(PipelineError, match="run `dvc repro`"):
        load_prepared(tmp_path / "nothing")

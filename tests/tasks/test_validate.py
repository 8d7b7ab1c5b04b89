"""Each data check fails on a dataset with that defect planted, naming it; a clean one passes.

Datasets are real image folders written with Pillow, prepared by the pipeline's own code, then
validated by Great Expectations exactly as the validate stage does."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from simclr.config import load_params
from simclr.data.prepared import (
    load_manifest,
    load_prepared,
    save_prepared,
    skip_rejected,
    split_source,
)
from tasks.sources import load_dataset
from tasks.validate import Suites, summary_line, summary_markdown, validate_manifest

CLASSES = ("cat", "dog", "fox")


def texture(seed: int, size: int = 16) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)


def image_folder(root, per_class=6, test_per_class=3) -> dict:
    """train/<class>/ and test/<class>/ folders of distinct noise images."""
    seed = 0
    for split, n in (("train", per_class), ("test", test_per_class)):
        for c in CLASSES:
            (root / split / c).mkdir(parents=True)
            for i in range(n):
                seed += 1
                Image.fromarray(texture(seed)).save(root / split / c / f"{i}.png")
    return {"train": root / "train", "test": root / "test"}


def params(tmp_path, validate: dict | None = None, data: str = "image_size: 16"):
    checks = {"min_rows": 10, "min_per_class": 2, "max_imbalance": 3, **(validate or {})}
    p = tmp_path / "params.yaml"
    p.write_text(
        f"data: {{{data}}}\n"
        f"datasets: {{pets: {{source: imagefolder, root: {tmp_path / 'img/train'}, "
        f"test_root: {tmp_path / 'img/test'}}}}}\n"
        f"validate: {json.dumps(checks)}\n"
        "pretrain: {dataset: pets}\ntransfer: {datasets: []}\n"
    )
    return load_params(p)


def prepare(p, tmp_path):
    cfg = p.datasets["pets"]
    opts = cfg.options(p.data)
    prepared = split_source(load_dataset(cfg, opts, 0), opts.test_fraction, 0)
    if opts.skip_corrupt:
        prepared = skip_rejected(prepared)
    return save_prepared(prepared, tmp_path / "data/prepared/pets")


def validate(p, tmp_path, tamper=None) -> dict:
    root = tmp_path / "data/prepared/pets"
    if not root.exists():
        prepare(p, tmp_path)
    manifest = load_manifest(root)
    if tamper:
        tamper(manifest)
    classes = list(load_prepared(root).class_names)
    suites = Suites.create()
    try:
        return validate_manifest("pets", p, manifest, classes, suites)
    finally:
        shutil.rmtree(suites.docs, ignore_errors=True)


def failed(report) -> dict[str, dict]:
    return {o["check"]: o for o in report["expectations"] if not o["success"]}


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # prepared_root is relative to the repository root
    return image_folder(tmp_path / "img")


def test_clean_dataset_passes_every_check(tmp_path, folder):
    report = validate(params(tmp_path), tmp_path)
    assert report["success"], summary_line(report)
    assert len(report["expectations"]) == 22
    assert "all 22 checks passed" in summary_line(report)


def test_data_docs_are_published_with_every_check(tmp_path, folder):
    p = params(tmp_path)
    prepare(p, tmp_path)
    root = tmp_path / "data/prepared/pets"
    suites = Suites.create()
    report = validate_manifest("pets", p, load_manifest(root), ["cat", "dog", "fox"], suites)
    built = suites.docs
    suites.publish(tmp_path / "docs")
    assert not built.exists()  # moved, not copied: no temporary left behind
    index = (tmp_path / "docs" / "index.html").read_text()
    assert "pets" in index and "pets-class-counts" in index
    pages = [p.read_text() for p in (tmp_path / "docs").rglob("*.html") if "validations" in str(p)]
    assert len(pages) == 2  # one validation result page per suite
    # The checks restricted to some rows show their conditions.
    (page,) = [p for p in pages if "pets-class-counts" not in p]
    for condition in ("error IS NULL", "split != unlabeled", "split == test"):
        assert f">{condition}</span>, then values" in page, condition
    assert report["success"]


def test_too_few_rows(tmp_path, folder):
    report = validate(params(tmp_path, validate={"min_rows": 100}), tmp_path)
    assert set(failed(report)) == {"row count in range"}
    assert failed(report)["row count in range"]["observed_value"] == 27


def test_label_outside_the_class_set(tmp_path, folder):
    def tamper(m):
        m.loc[4, "label"] = 7

    report = validate(params(tmp_path), tmp_path, tamper)
    bad = failed(report)
    assert "labels in the class set" in bad
    assert bad["labels in the class set"]["unexpected_count"] == 1
    assert bad["labels in the class set"]["examples"][0]["label"] == 7


def test_class_with_too_few_images(tmp_path, folder):
    for f in sorted((folder["test"] / "fox").iterdir())[1:]:
        f.unlink()
    report = validate(params(tmp_path), tmp_path)
    bad = failed(report)
    check = "every class has at least 2 images in each split"
    assert check in bad and bad[check]["examples"] == [
        {"split": "test", "label": 2, "class": "fox", "count": 1}
    ]
    assert "test/fox: 1 images" in summary_line(report)


def test_missing_class_in_test_split(tmp_path, folder):
    for f in (folder["test"] / "dog").iterdir():
        f.unlink()
    (folder["test"] / "dog").rmdir()
    (folder["test"] / "dog").mkdir()
    Image.fromarray(texture(999)).save(folder["test"] / "dog" / "only.png")

    def tamper(m):  # the dog in the test split is relabelled: no dog left there
        m.loc[(m["split"] == "test") & (m["label"] == 1), "label"] = 0

    report = validate(params(tmp_path), tmp_path, tamper)
    check = "every class has at least 2 images in each split"
    assert {"split": "test", "label": 1, "class": "dog", "count": 0} in failed(report)[check][
        "examples"
    ]


def test_class_imbalance(tmp_path, folder):
    for i in range(6, 20):
        Image.fromarray(texture(100 + i)).save(folder["train"] / "cat" / f"{i}.png")
    report = validate(params(tmp_path), tmp_path)
    check = "largest class at most 3x the smallest in each split"
    assert set(failed(report)) == {check}
    assert failed(report)[check]["examples"][0]["class"] == "cat"


def test_shape_and_channels_not_as_configured(tmp_path, folder):
    prepare(params(tmp_path), tmp_path)  # 16 px RGB ...
    report = validate(params(tmp_path, data="image_size: 12, channels: 1"), tmp_path)  # ... vs
    assert set(failed(report)) == {
        "height as configured",
        "width as configured",
        "channels as configured",
    }
    assert failed(report)["height as configured"]["unexpected_count"] == 27


def test_nulls(tmp_path, folder):
    def tamper(m):
        m.loc[2, "sha256"] = None
        m.loc[5, "pixel_std"] = None

    report = validate(params(tmp_path), tmp_path, tamper)
    assert {"no missing sha256", "no missing pixel_std"} <= set(failed(report))
    assert failed(report)["no missing sha256"]["unexpected_count"] == 1


def test_near_blank_image(tmp_path, folder):
    blank = np.full((16, 16, 3), 128, np.uint8)
    blank[0, 0] = 129  # almost flat
    Image.fromarray(blank).save(folder["train"] / "dog" / "blank.png")
    report = validate(params(tmp_path), tmp_path)
    bad = failed(report)
    assert set(bad) == {"no near-blank images"}
    assert bad["no near-blank images"]["examples"][0]["source"].endswith("train/dog/blank.png")


def test_duplicate_within_a_split(tmp_path, folder):
    shutil.copy(folder["train"] / "cat" / "0.png", folder["train"] / "cat" / "copy.png")
    report = validate(params(tmp_path), tmp_path)
    bad = failed(report)
    assert set(bad) == {"no duplicate images within a split"}
    sources = {
        r["source"].rsplit("/", 1)[-1]
        for r in bad["no duplicate images within a split"]["examples"]
    }
    assert sources == {"0.png", "copy.png"}


def test_train_test_leakage(tmp_path, folder):
    shutil.copy(folder["train"] / "fox" / "1.png", folder["test"] / "fox" / "leak.png")
    report = validate(params(tmp_path), tmp_path)
    bad = failed(report)
    assert set(bad) == {"no test image also in a training split"}
    assert bad["no test image also in a training split"]["examples"][0]["source"].endswith(
        "test/fox/leak.png"
    )


def plant_corrupt_files(folder):
    (folder["train"] / "cat" / "empty.jpg").write_bytes(b"")
    good = folder["train"] / "dog" / "0.png"
    buf = np.asarray(Image.open(good))
    Image.fromarray(np.repeat(np.repeat(buf, 4, 0), 4, 1)).save(folder["train"] / "dog" / "t.jpg")
    data = (folder["train"] / "dog" / "t.jpg").read_bytes()
    (folder["train"] / "dog" / "t.jpg").write_bytes(data[: len(data) // 2])
    (folder["test"] / "fox" / "notes.png").write_text("not an image")


def test_undecodable_files_are_named(tmp_path, folder):
    plant_corrupt_files(folder)
    report = validate(params(tmp_path), tmp_path)
    bad = failed(report)
    assert set(bad) == {"every file decodable"}
    named = {
        r["source"].rsplit("/", 2)[-2] + "/" + r["source"].rsplit("/", 1)[-1]: r["error"]
        for r in bad["every file decodable"]["examples"]
    }
    assert set(named) == {"cat/empty.jpg", "dog/t.jpg", "fox/notes.png"}
    assert all(named.values())
    line = summary_line(report)
    assert "every file decodable: failed for 3 rows" in line and "empty.jpg" in line


def test_skip_corrupt_drops_and_records_them(tmp_path, folder):
    plant_corrupt_files(folder)
    report = validate(params(tmp_path, data="image_size: 16, skip_corrupt: true"), tmp_path)
    assert report["success"], summary_line(report)
    assert {s["path"].rsplit("/", 1)[-1] for s in report["skipped"]} == {
        "empty.jpg",
        "t.jpg",
        "notes.png",
    }
    assert len(load_manifest(tmp_path / "data/prepared/pets")) == 27
    assert "skip_corrupt dropped 3 files" in summary_markdown(report)

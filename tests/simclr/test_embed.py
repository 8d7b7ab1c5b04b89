"""The encoder in users' hands: `from simclr import load_encoder` and `simclr embed`, on real
photographs in several formats, checked against the pipeline's own decoding and features."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from helpers import tiny_checkpoint, tiny_prepared
from PIL import Image

import simclr.embed as embed_module
from simclr.data.imagefolder import UndecodableImage, load_image_folder
from simclr.data.prepared import save_prepared
from simclr.device import to_images
from simclr.embed import embed
from simclr.features import extract_features


def test_three_lines_embed_pil_images_as_the_prepare_stage_decodes_them(checkpoint, photos):
    from simclr import load_encoder

    images = [Image.open(p) for p in sorted(photos.rglob("*.*"))]
    encoder, preprocess = load_encoder(checkpoint, device="cpu")
    h = encoder(preprocess(images))
    assert not encoder.training and not any(p.requires_grad for p in encoder.parameters())
    assert h.shape == (len(images), encoder.out_dim) and not h.requires_grad
    # the same pixels as the prepare stage's decoding of the files (EXIF, mode, resize)
    prepared = load_image_folder(photos, image_size=16, channels=3, workers=1)
    np.testing.assert_array_equal(
        preprocess(images).numpy(), to_images(prepared.images, torch.device("cpu")).numpy()
    )


def test_embedding_a_folder_gives_the_features_evaluation_computes(checkpoint, photos, tmp_path):
    from simclr import load_encoder

    encoder, prep = load_encoder(checkpoint, device="cpu")
    out = tmp_path / "h.parquet"
    done = embed(encoder, prep, photos, out, batch_size=3, metadata={"checkpoint": "x"})
    table = pd.read_parquet(out)
    prepared = load_image_folder(photos, image_size=16, channels=3, workers=1)
    assert done.rows == len(table) == len(prepared.paths) == 8
    assert list(table.path) == prepared.paths
    assert list(table.label) == [prepared.classes[y] for y in prepared.labels]
    expected = extract_features(encoder, prepared.images, torch.device("cpu"))
    np.testing.assert_allclose(np.stack(table.h), expected, rtol=0, atol=1e-5)
    assert pq.read_schema(out).metadata[b"simclr"] == b'{"checkpoint": "x"}'


def test_a_flat_folder_has_no_labels_and_rows_stream_in_row_groups(
    checkpoint, photos, tmp_path, monkeypatch
):
    from simclr import load_encoder

    flat = tmp_path / "flat"
    flat.mkdir()
    for path in photos.rglob("*.*"):
        shutil.copy(path, flat / path.name)
    monkeypatch.setattr(embed_module, "ROW_GROUP_ROWS", 4)
    encoder, prep = load_encoder(checkpoint, device="cpu")
    embed(encoder, prep, flat, tmp_path / "h.parquet", batch_size=2)
    table = pd.read_parquet(tmp_path / "h.parquet")
    assert sorted(table.path) == sorted(p.name for p in photos.rglob("*.*"))
    assert table.label.isna().all()
    assert pq.ParquetFile(tmp_path / "h.parquet").metadata.num_row_groups == 2  # 4 + 4 rows


def test_a_bad_file_stops_the_embedding_or_is_skipped_by_name(checkpoint, photos, tmp_path):
    from simclr import load_encoder

    (photos / "others" / "broken.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    encoder, prep = load_encoder(checkpoint, device="cpu")
    out = tmp_path / "h.parquet"
    with pytest.raises(UndecodableImage, match="others/broken.jpg: cannot decode image"):
        embed(encoder, prep, photos, out)
    assert list(tmp_path.iterdir()) == [photos]  # no output, no temporary
    done = embed(encoder, prep, photos, out, skip_bad=True)
    assert [path for path, _ in done.skipped] == ["others/broken.jpg"]
    assert done.rows == len(pd.read_parquet(out)) == 8


def test_a_prepared_dataset_embeds_every_split_with_its_class_names(tmp_path):
    from simclr import load_encoder

    checkpoint = tiny_checkpoint(tmp_path / "gray.pt", channels=1, image_size=8)
    data = tiny_prepared(12, 6, classes=3)
    save_prepared(data, tmp_path / "prepared")
    encoder, prep = load_encoder(checkpoint, device="cpu")
    embed(encoder, prep, tmp_path / "prepared", tmp_path / "h.parquet", batch_size=5)
    table = pd.read_parquet(tmp_path / "h.parquet")
    assert list(table.split) == ["train"] * 12 + ["test"] * 6
    assert list(table.path[:2]) == ["train/0", "train/1"] and list(table["index"][:2]) == [0, 1]
    labels = np.concatenate([data.train.labels, data.test.labels])
    assert list(table.label) == [data.class_names[y] for y in labels]
    images = np.concatenate([data.train.images, data.test.images])
    expected = extract_features(encoder, images, torch.device("cpu"))
    np.testing.assert_allclose(np.stack(table.h), expected, rtol=0, atol=1e-5)


def test_wrong_channels_and_a_missing_folder_are_one_line_errors(tmp_path, capsys):
    from flows.console import main

    checkpoint = tiny_checkpoint(tmp_path / "rgb.pt", channels=3, image_size=8)
    save_prepared(tiny_prepared(12, 6), tmp_path / "gray")  # 1 channel
    for source, message in (
        (tmp_path / "gray", "images have 1 channels but the checkpoint expects 3"),
        (tmp_path / "nowhere", "image folder not found"),
    ):
        out = tmp_path / "h.parquet"
        with pytest.raises(SystemExit) as exit_:
            main(["embed", str(source), str(out), "--checkpoint", str(checkpoint)])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("photo.jpg", r"got a str; pass a list of PIL images, e.g. \[Image\.open\(path\)"),
        (np.zeros((4, 8, 8, 3), np.uint8), r"got a ndarray; .*Image\.fromarray\(array\)"),
        (Image.new("RGB", (8, 8)), r"got one PIL image, not a list of them; pass \[image\]"),
        (["photo.jpg"], r"images\[0\] is a str, not a PIL image; pass a list of PIL images"),
        ([], r"no images given"),
        ([Image.new("RGB", (8, 8)), Image.new("RGB", (0, 0))], r"images\[1\] is 0x0 pixels"),
        ([Image.new("L", (0, 5))], r"images\[0\] is 0x5 pixels, empty"),
    ],
    ids=["path", "array", "one-image", "list-of-paths", "empty-list", "0x0", "0x5"],
)
def test_preprocess_given_anything_but_a_list_of_nonempty_pil_images_says_what_to_pass(
    checkpoint, given, message
):
    from simclr import load_encoder
    from simclr.errors import PipelineError

    _, preprocess = load_encoder(checkpoint, device="cpu")
    with pytest.raises(PipelineError, match=f"^preprocess: {message}"):
        preprocess(given)


def test_preprocess_takes_a_tuple_or_a_generator_of_images(checkpoint):
    from simclr import load_encoder

    _, preprocess = load_encoder(checkpoint, device="cpu")
    images = [Image.new("RGB", (9, 7), "red"), Image.new("RGB", (1, 1))]
    expected = preprocess(images)
    assert expected.shape == (2, 3, 16, 16)
    assert torch.equal(preprocess(tuple(images)), expected)
    assert torch.equal(preprocess(img for img in images), expected)

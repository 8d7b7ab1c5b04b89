"""Image folders built in tmp_path with Pillow: layout, conversion, EXIF, errors, workers."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from simclr.data.imagefolder import load_image_folder
from simclr.errors import PipelineError


def save(path, size=(8, 6), color=(200, 40, 10), mode="RGB", **kwargs):
    """Write a solid-color image; the format follows the suffix."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, color).save(path, **kwargs)
    return path


def noise_folder(root, classes=("b", "a", "c"), per_class=5, size=(10, 12)):
    """Classes and files created out of order, each image random noise so order is checkable."""
    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir()
        for i in reversed(range(per_class)):
            pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i:02d}.png")
    return root


def test_classes_labels_and_paths_are_sorted(tmp_path):
    noise_folder(tmp_path)
    d = load_image_folder(tmp_path, workers=1)
    assert d.classes == ["a", "b", "c"]
    assert d.labels.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    assert d.paths[:6] == ["a/00.png", "a/01.png", "a/02.png", "a/03.png", "a/04.png", "b/00.png"]
    for img, path in zip(d.images, d.paths, strict=True):
        np.testing.assert_array_equal(img, np.asarray(Image.open(tmp_path / path)))


def test_shapes_and_dtypes(tmp_path):
    noise_folder(tmp_path, size=(10, 12))
    d = load_image_folder(tmp_path, workers=1)
    assert d.images.shape == (15, 12, 10, 3) and d.images.dtype == np.uint8
    assert d.labels.shape == (15,) and d.labels.dtype == np.int64


def test_resize_to_image_size(tmp_path):
    save(tmp_path / "x" / "small.png", size=(8, 6))
    save(tmp_path / "x" / "large.png", size=(40, 30))
    save(tmp_path / "y" / "square.png", size=(16, 16))
    d = load_image_folder(tmp_path, image_size=16, workers=1)
    assert d.images.shape == (3, 16, 16, 3)
    # A solid color stays that color through bilinear resizing.
    np.testing.assert_array_equal(d.images[0, 5, 5], [200, 40, 10])


def test_mixed_sizes_without_image_size_name_the_odd_file(tmp_path):
    save(tmp_path / "x" / "a.png", size=(8, 6))
    odd = save(tmp_path / "x" / "b.png", size=(9, 6))
    with pytest.raises(PipelineError, match="pass image_size") as e:
        load_image_folder(tmp_path, workers=1)
    assert str(odd) in str(e.value)


def test_grayscale_to_rgb_and_rgb_to_grayscale(tmp_path):
    save(tmp_path / "gray" / "g.png", mode="L", color=77)
    save(tmp_path / "rgb" / "c.png", color=(200, 40, 10))
    rgb = load_image_folder(tmp_path, channels=3, workers=1)
    assert rgb.images.shape == (2, 6, 8, 3)
    np.testing.assert_array_equal(rgb.images[0, 0, 0], [77, 77, 77])
    np.testing.assert_array_equal(rgb.images[1, 0, 0], [200, 40, 10])
    gray = load_image_folder(tmp_path, channels=1, workers=1)
    assert gray.images.shape == (2, 6, 8, 1)
    assert gray.images[0, 0, 0, 0] == 77
    # ITU-R 601-2 luma, as Pillow computes it: 0.299 R + 0.587 G + 0.114 B.
    assert abs(int(gray.images[1, 0, 0, 0]) - round(0.299 * 200 + 0.587 * 40 + 0.114 * 10)) <= 1


def test_png_and_jpeg_both_read(tmp_path):
    save(tmp_path / "x" / "a.png")
    save(tmp_path / "x" / "b.jpg", quality=95)
    save(tmp_path / "x" / "c.JPEG", quality=95)
    d = load_image_folder(tmp_path, workers=1)
    assert d.paths == ["x/a.png", "x/b.jpg", "x/c.JPEG"]
    np.testing.assert_array_equal(d.images[0, 3, 3], [200, 40, 10])
    assert np.abs(d.images[1:].astype(int) - [200, 40, 10]).max() <= 3  # lossy, but close


def test_exif_rotated_jpeg_comes_out_upright(tmp_path):
    # Stored 20 wide x 10 high, left half red and right half blue; orientation 6 says "rotate
    # 90 degrees clockwise to display", so upright it is 10 wide x 20 high, red on top.
    pixels = np.zeros((10, 20, 3), dtype=np.uint8)
    pixels[:, :10] = [255, 0, 0]
    pixels[:, 10:] = [0, 0, 255]
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "x").mkdir()
    Image.fromarray(pixels).save(tmp_path / "x" / "portrait.jpg", exif=exif, quality=95)
    d = load_image_folder(tmp_path, workers=1)
    assert d.images.shape == (1, 20, 10, 3)
    top, bottom = d.images[0, 2, 5].astype(int), d.images[0, 17, 5].astype(int)
    assert top[0] > 200 and top[2] < 50
    assert bottom[2] > 200 and bottom[0] < 50


def test_missing_root(tmp_path):
    root = tmp_path / "nowhere"
    with pytest.raises(PipelineError, match="not found") as e:
        load_image_folder(root)
    assert str(root) in str(e.value)


def test_root_is_a_file(tmp_path):
    root = save(tmp_path / "image.png")
    with pytest.raises(PipelineError, match="not a directory") as e:
        load_image_folder(root)
    assert str(root) in str(e.value)


def test_no_class_subfolders(tmp_path):
    save(tmp_path / "loose.png")
    (tmp_path / ".hidden").mkdir()
    with pytest.raises(PipelineError, match="no class subfolders") as e:
        load_image_folder(tmp_path)
    assert str(tmp_path) in str(e.value)


def test_class_folder_without_images(tmp_path):
    save(tmp_path / "a" / "x.png")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("not an image")
    with pytest.raises(PipelineError, match="no images") as e:
        load_image_folder(tmp_path)
    assert str(tmp_path / "b") in str(e.value)


@pytest.mark.parametrize("workers", [1, 4])
def test_undecodable_file_is_named(tmp_path, workers):
    for i in range(10):
        save(tmp_path / "a" / f"{i}.png")
    bad = tmp_path / "b" / "broken.jpg"
    bad.parent.mkdir()
    bad.write_bytes(b"this is not a jpeg")
    with pytest.raises(PipelineError, match="cannot decode") as e:
        load_image_folder(tmp_path, workers=workers)
    message = str(e.value)
    assert str(bad) in message and "\n" not in message


def test_not_strict_leaves_out_undecodable_files_keeping_paths_and_labels_aligned(tmp_path):
    for c, color in (("a", (10, 0, 0)), ("b", (0, 200, 0))):
        for i in range(3):
            save(tmp_path / c / f"{i}.png", color=color)
    (tmp_path / "a" / "1.png").write_bytes(b"not a png")
    d = load_image_folder(tmp_path, workers=1, strict=False)
    assert d.paths == ["a/0.png", "a/2.png", "b/0.png", "b/1.png", "b/2.png"]
    assert d.labels.tolist() == [0, 0, 1, 1, 1]
    assert d.images[:, 0, 0, 1].tolist() == [0, 0, 200, 200, 200]
    assert [(p, label) for p, label, _ in d.rejected] == [("a/1.png", 0)]


def test_truncated_file_is_named(tmp_path):
    good = save(tmp_path / "a" / "good.png", size=(64, 64))
    bad = tmp_path / "a" / "truncated.png"
    bad.write_bytes(good.read_bytes()[:60])
    with pytest.raises(PipelineError, match="cannot decode") as e:
        load_image_folder(tmp_path, workers=1)
    assert str(bad) in str(e.value)


def test_same_result_with_one_and_four_workers(tmp_path):
    noise_folder(tmp_path, classes=("cat", "dog", "emu"), per_class=70)
    one = load_image_folder(tmp_path, image_size=8, workers=1)
    four = load_image_folder(tmp_path, image_size=8, workers=4)
    np.testing.assert_array_equal(one.images, four.images)
    np.testing.assert_array_equal(one.labels, four.labels)
    assert one.classes == four.classes and one.paths == four.paths


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"channels": 2}, "channels=2"),
        ({"image_size": 0}, "image_size=0"),
        ({"workers": 0}, "workers=0"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, message):
    save(tmp_path / "a" / "x.png")
    with pytest.raises(PipelineError, match=message):
        load_image_folder(tmp_path, **kwargs)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    ramp = (np.arange(16 * 16).reshape(16, 16) * 257).astype(np.uint16)  # 0..65535
    (tmp_path / "a").mkdir()
    Image.fromarray(ramp).save(tmp_path / "a" / "deep.png")
    gray = load_image_folder(tmp_path, channels=1, workers=1).images[0, ..., 0]
    assert np.array_equal(gray, np.arange(256, dtype=np.uint8).reshape(16, 16))
    rgb = load_image_folder(tmp_path, channels=3, workers=1).images[0]
    assert np.array_equal(rgb[..., 0], gray) and np.array_equal(rgb[..., 2], gray)


def test_cmyk_jpeg_and_rgba_png_become_rgb(tmp_path):
    save(tmp_path / "a" / "ink.jpg", mode="CMYK", color=(0, 255, 255, 0), quality=95)  # red
    save(tmp_path / "b" / "glass.png", mode="RGBA", color=(10, 200, 30, 40))
    d = load_image_folder(tmp_path, workers=1)
    assert d.images.shape == (2, 6, 8, 3)
    r, g, b = d.images[0].reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60
    assert d.images[1, 0, 0].tolist() == [10, 200, 30]  # alpha dropped, colour kept


def test_a_large_photo_decodes_without_pillows_bomb_warning_and_a_bomb_is_one_line(
    tmp_path, monkeypatch
):
    """Pillow's limits scaled down (as test_decode_fuzz does): it warns above MAX_IMAGE_PIXELS
    and refuses above twice that. Between them (a 100 MP photo at the real limits) an image is
    decoded quietly; above, the refusal is the one-line UndecodableImage."""
    import warnings

    from simclr.data.imagefolder import UndecodableImage, decode

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    large, bomb = save(tmp_path / "large.png", (40, 40)), save(tmp_path / "bomb.png", (50, 50))
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")  # whatever the caller's filters, Pillow's stays quiet
        assert decode(large, "RGB", 8).shape == (8, 8, 3)
        with pytest.raises(UndecodableImage, match=r"bomb\.png: cannot decode image \(Image size"):
            decode(bomb, "RGB", 8)
    assert [str(w.message) for w in shown] == []

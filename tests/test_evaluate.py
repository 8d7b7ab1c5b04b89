import numpy as np
import torch

from simclr.config import EvaluateConfig, ModelConfig
from simclr.evaluate import (
    balanced_subset,
    extract_features,
    fraction_key,
    linear_probe,
    probe_at_fractions,
)
from simclr.models import build_model


def test_balanced_subset_is_per_class_seeded_and_at_least_one():
    labels = np.repeat(np.arange(5), [100, 50, 20, 10, 3])
    idx = balanced_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[idx]).tolist() == [10, 5, 2, 1, 1]
    assert np.array_equal(idx, balanced_subset(labels, 0.1, seed=0))
    assert not np.array_equal(idx, balanced_subset(labels, 0.1, seed=1))
    assert len(np.unique(idx)) == len(idx)


def test_probe_separates_linearly_separable_features():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 20)) * 5
    y = rng.integers(0, 4, 400)
    x = centers[y] + rng.normal(size=(400, 20))
    assert linear_probe(x[:300], y[:300], x[300:], y[300:], C=1.0, max_iter=500) >= 0.99


def test_probe_at_fractions_schema_and_reproducibility():
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    x = np.eye(3)[y] * 3 + rng.normal(size=(300, 3))
    cfg = EvaluateConfig(fractions=(0.1, 1.0), seeds=3)
    a = probe_at_fractions(x, y, x, y, cfg, seed=0)
    assert list(a) == ["0.1", "1.0"]
    assert a["0.1"]["n"] == 3 and a["1.0"]["n"] == 1
    assert 0 <= a["0.1"]["mean"] <= 1 and a["0.1"]["std"] >= 0
    assert a == probe_at_fractions(x, y, x, y, cfg, seed=0)
    assert fraction_key(1) == "1.0" and fraction_key(0.01) == "0.01"


def test_feature_extraction_freezes_encoder_in_eval_mode():
    torch.manual_seed(0)
    encoder, _ = build_model(
        ModelConfig(widths=(8, 16), blocks=(1, 1)), in_channels=1, image_size=8
    )
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    feats = extract_features(encoder, images, torch.device("cpu"), batch_size=4)
    assert feats.shape == (10, 16)
    assert not encoder.training
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k  # BN running stats included

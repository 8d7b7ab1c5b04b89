import numpy as np
import pytest
import torch

from simclr.checkpoint import load_encoder, save_checkpoint
from simclr.config import AugmentConfig, ModelConfig, PretrainConfig
from simclr.device import select_device
from simclr.errors import PipelineError
from simclr.optim import scaled_lr, warmup_cosine
from simclr.train import pretrain

MODEL = ModelConfig(widths=(8, 16), blocks=(1, 1), proj_hidden_dim=16, proj_dim=8)


def tiny_images(n=64, size=8):
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def cfg(**kw):
    base = dict(
        epochs=2,
        batch_size=32,
        lr=0.3,
        warmup_epochs=1,
        device="cpu",
        augment=AugmentConfig(crop_scale=(0.3, 1.0)),
    )
    return PretrainConfig(**{**base, **kw})


def test_schedule_warms_up_then_decays_to_zero():
    lrs = [warmup_cosine(s, 10, 100) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))
    assert warmup_cosine(100, 10, 100) == pytest.approx(0.0)


def test_pretrain_logs_every_epoch_and_is_reproducible():
    seen = []
    a = pretrain(tiny_images(), MODEL, cfg(), seed=0, on_epoch=lambda e, m: seen.append(e))
    b = pretrain(tiny_images(), MODEL, cfg(), seed=0)
    assert seen == [0, 1]
    assert set(a.history[0]) >= {"loss", "lr", "images_per_s"}
    for k, v in a.encoder.state_dict().items():
        assert torch.equal(v, b.encoder.state_dict()[k]), k


def test_pretraining_reduces_the_loss():
    r = pretrain(tiny_images(128), MODEL, cfg(epochs=8, batch_size=64), seed=0)
    assert r.history[-1]["loss"] < r.history[0]["loss"]


def test_divergence_names_epoch_and_step():
    with pytest.raises(PipelineError, match=r"non-finite loss at epoch 1, step \d+"):
        pretrain(tiny_images(), MODEL, cfg(lr=1e30, warmup_epochs=0), seed=0)


def test_checkpoint_roundtrip(tmp_path):
    r = pretrain(tiny_images(), MODEL, cfg(epochs=1), seed=0)
    path = save_checkpoint(tmp_path / "m.pt", r.encoder, r.head, MODEL, {"dataset": "x"})
    enc, meta = load_encoder(path, torch.device("cpu"))
    assert meta["dataset"] == "x" and not enc.training
    x = torch.rand(4, 1, 8, 8)
    r.encoder.eval()
    assert torch.equal(enc(x), r.encoder(x))


def test_corrupt_checkpoint_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(PipelineError, match="not a readable checkpoint"):
        load_encoder(bad, torch.device("cpu"))


def test_foreign_checkpoint_is_a_clear_error(tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"state_dict": {}}, other)
    with pytest.raises(PipelineError, match="not a simclr-pipeline checkpoint"):
        load_encoder(other, torch.device("cpu"))


@pytest.mark.skipif(
    torch.cuda.is_available(), reason="checks the message on a machine without CUDA"
)
def test_unavailable_device_is_a_clear_error():
    with pytest.raises(PipelineError, match=r"pretrain\.device = 'cuda' is not available"):
        select_device("cuda")


def test_learning_rate_scales_with_the_batch_actually_used():
    assert scaled_lr(cfg(lr=0.4), 64) == pytest.approx(0.1)
    # 40 images with batch_size 256: one batch of 40, so the rate is 0.4 * 40 / 256.
    r = pretrain(
        tiny_images(40), MODEL, cfg(lr=0.4, batch_size=256, epochs=1, warmup_epochs=0), seed=0
    )
    assert r.history[0]["lr"] == pytest.approx(0.4 * 40 / 256)

import math

import numpy as np
import pytest
import torch
from helpers import MODEL, cfg, tiny_images

import simclr.train as train_module
from flows.errors import explain
from simclr.checkpoint import load_encoder, save_checkpoint
from simclr.data.embedded import load_source
from simclr.device import bf16_supported, select_device
from simclr.errors import PipelineError
from simclr.models import build_model
from simclr.optim import scaled_lr, warmup_cosine
from simclr.probe import knn_accuracy
from simclr.train import Labelled, pretrain


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


@pytest.mark.parametrize(("optimizer", "lr"), [("lars", 1.0), ("sgd", 0.5), ("adamw", 1e-2)])
def test_pretraining_reduces_the_loss(optimizer, lr):
    digits = load_source("digits", 0).images[:512]  # real structure; noise has none to learn
    r = pretrain(digits, MODEL, cfg(epochs=6, batch_size=128, optimizer=optimizer, lr=lr), seed=0)
    assert r.history[-1]["loss"] < r.history[0]["loss"] - 0.1


def test_divergence_names_epoch_and_step():
    with pytest.raises(PipelineError, match=r"non-finite loss at epoch 1, step \d+"):
        pretrain(tiny_images(), MODEL, cfg(lr=1e30, warmup_epochs=0), seed=0)


def test_checkpoint_roundtrip(tmp_path):
    r = pretrain(tiny_images(), MODEL, cfg(epochs=1), seed=0)
    path = save_checkpoint(tmp_path / "m.pt", r.encoder, r.head, MODEL, 8, {"dataset": "x"})
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
    with pytest.raises(PipelineError, match=r"^device = 'cuda' is not available") as e:
        select_device("cuda")
    assert explain(e.value).startswith("params.yaml: pretrain.device = 'cuda' is not available")


def test_learning_rate_scales_with_the_batch_actually_used():
    assert scaled_lr(0.4, 64) == pytest.approx(0.1)
    # 40 images with batch_size 256: one batch of 40, so the rate is 0.4 * 40 / 256.
    r = pretrain(
        tiny_images(40), MODEL, cfg(lr=0.4, batch_size=256, epochs=1, warmup_epochs=0), seed=0
    )
    assert r.history[0]["lr"] == pytest.approx(0.4 * 40 / 256)


def test_schedule_at_start_end_of_warmup_and_end_matches_the_formula():
    # peak * (s + 1) / warmup during warmup; peak * (1 + cos(pi * t)) / 2 after it.
    warmup, total, peak = 10, 110, 0.6
    assert peak * warmup_cosine(0, warmup, total) == pytest.approx(peak / warmup)
    assert peak * warmup_cosine(warmup - 1, warmup, total) == pytest.approx(peak)
    assert peak * warmup_cosine(warmup + 50, warmup, total) == pytest.approx(peak / 2)
    last = peak * (1 + math.cos(math.pi * 99 / 100)) / 2
    assert peak * warmup_cosine(total - 1, warmup, total) == pytest.approx(last)


def test_rate_is_stepped_per_iteration_through_the_optimizer():
    # 64 images, batch 16: 4 steps an epoch, 1 warmup epoch. The logged lr is the last step's.
    r = pretrain(tiny_images(), MODEL, cfg(epochs=3, batch_size=16, lr=0.32), seed=0)
    peak = 0.32 * 16 / 256
    assert r.history[0]["lr"] == pytest.approx(peak)  # step 3 of warmup = 4/4
    assert r.history[2]["lr"] == pytest.approx(peak * warmup_cosine(11, 4, 12))


def test_square_root_scaling():
    assert scaled_lr(0.075, 4096, "sqrt") == pytest.approx(0.075 * 64)


def test_knn_matches_a_float64_brute_force_reference():
    rng = np.random.default_rng(0)
    train_x, test_x = rng.normal(size=(300, 16)), rng.normal(size=(50, 16))
    train_y, test_y = rng.integers(0, 4, 300), rng.integers(0, 4, 50)
    a = lambda v: v / np.linalg.norm(v, axis=1, keepdims=True)  # noqa: E731
    sim = a(test_x) @ a(train_x).T
    preds = []
    for row in sim:
        top = np.argsort(-row)[:20]
        votes = np.bincount(train_y[top], weights=np.exp(row[top] / 0.1), minlength=4)
        preds.append(votes.argmax())
    expected = float(np.mean(np.array(preds) == test_y))
    assert knn_accuracy(train_x, train_y, test_x, test_y, k=20, temperature=0.1, chunk=7) == (
        pytest.approx(expected)
    )
    # Separable clusters: every test point is classified right.
    centres = rng.normal(size=(4, 16)) * 10
    tx = centres[train_y] + rng.normal(size=(300, 16))
    qx = centres[test_y] + rng.normal(size=(50, 16))
    assert knn_accuracy(tx, train_y, qx, test_y, k=20) == 1.0


def test_knn_monitor_runs_every_k_epochs_and_at_the_end():
    x = tiny_images(96)
    labels = np.arange(96) % 3
    monitor = Labelled(x[:64], labels[:64], x[64:], labels[64:])
    r = pretrain(x, MODEL, cfg(epochs=5, knn_every=2), seed=0, monitor=monitor)
    assert ["knn_accuracy" in h for h in r.history] == [False, True, False, True, True]
    assert all(0 <= h["knn_accuracy"] <= 1 for h in r.history if "knn_accuracy" in h)
    # The monitor leaves training untouched: same weights as without it.
    plain = pretrain(x, MODEL, cfg(epochs=5), seed=0)
    for k, v in r.encoder.state_dict().items():
        assert torch.equal(v, plain.encoder.state_dict()[k]), k


def test_fp16_on_cpu_is_a_clear_error():
    with pytest.raises(PipelineError, match=r"^precision = 'fp16' needs a GPU") as e:
        pretrain(tiny_images(), MODEL, cfg(precision="fp16"), seed=0)
    assert explain(e.value).startswith("params.yaml: pretrain.precision = 'fp16' needs a GPU")


@pytest.mark.skipif(not bf16_supported(torch.device("cpu")), reason="CPU without bf16")
def test_bf16_channels_last_trains_and_stays_close_to_fp32():
    a = pretrain(tiny_images(), MODEL, cfg(precision="fp32"), seed=0)
    b = pretrain(tiny_images(), MODEL, cfg(precision="bf16", channels_last=True), seed=0)
    assert b.precision == "bf16" and a.precision == "fp32"
    la, lb = a.history[0]["loss"], b.history[0]["loss"]
    assert math.isfinite(lb) and abs(la - lb) < 0.05 * la


def _stop_after(epoch_to_stop: int):
    def on_epoch(epoch, metrics):
        if epoch == epoch_to_stop:
            raise KeyboardInterrupt  # stands in for a kill after the state was saved

    return on_epoch


def test_resume_continues_bitwise_from_the_last_saved_epoch(tmp_path):
    state = tmp_path / "resume.pt"
    c = cfg(epochs=4, knn_every=0)
    whole = pretrain(tiny_images(), MODEL, c, seed=0)
    with pytest.raises(KeyboardInterrupt):
        pretrain(tiny_images(), MODEL, c, seed=0, on_epoch=_stop_after(1), resume_path=state)
    seen = []
    resumed = pretrain(
        tiny_images(), MODEL, c, seed=0, on_epoch=lambda e, m: seen.append(e), resume_path=state
    )
    assert resumed.resumed_from == 2 and seen == [0, 1, 2, 3]  # restored epochs replayed
    assert [h["loss"] for h in resumed.history] == [h["loss"] for h in whole.history]
    for mine, ref in ((resumed.encoder, whole.encoder), (resumed.head, whole.head)):
        for k, v in mine.state_dict().items():
            assert torch.equal(v, ref.state_dict()[k]), k


def test_divergence_keeps_the_last_good_state(tmp_path, monkeypatch):
    state = tmp_path / "resume.pt"
    built = []

    def build_and_keep(*args, **kwargs):
        f, g = build_model(*args, **kwargs)
        built.append(f)
        return f, g

    def poison_after_second_epoch(epoch, metrics):
        if epoch == 1:  # the state after epoch 2 is saved already; ruin the live weights
            with torch.no_grad():
                next(built[0].parameters()).fill_(float("nan"))

    monkeypatch.setattr(train_module, "build_model", build_and_keep)
    with pytest.raises(PipelineError, match=r"non-finite loss at epoch 3, step 1"):
        pretrain(
            tiny_images(),
            MODEL,
            cfg(epochs=4),
            seed=0,
            on_epoch=poison_after_second_epoch,
            resume_path=state,
        )
    saved = torch.load(state, weights_only=True)
    assert len(saved["history"]) == 2
    assert all(torch.isfinite(v).all() for v in saved["encoder"].values() if v.is_floating_point())


def test_release_free_heap_gives_freed_memory_back():
    from simclr.device import _malloc_trim, release_free_heap

    if _malloc_trim() is None:
        pytest.skip("no glibc malloc_trim here")

    def anon_mib() -> int:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) // 1024 for x in f if x.startswith("RssAnon:"))

    big = np.ones(20 * 2**20, np.uint8)
    del big  # glibc now serves blocks up to 20 MB from its heap instead of fresh mappings
    blocks = [np.ones(2**20, np.uint8) for _ in range(200)]
    keep = blocks[-1]  # pins the top of the heap: only trimming can free what lies below
    del blocks
    before = anon_mib()
    release_free_heap()
    assert before - anon_mib() > 100 and keep.sum() == 2**20


CUDA_OOM = "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79 GiB"


def test_out_of_memory_in_pretraining_says_so_and_names_the_params_to_lower(monkeypatch):
    def out_of_memory(*args, **kwargs):  # what torch raises on a GPU, simulated on the CPU
        raise torch.OutOfMemoryError(CUDA_OOM)

    monkeypatch.setattr(train_module, "nt_xent", out_of_memory)
    with pytest.raises(PipelineError) as err:
        pretrain(tiny_images(), MODEL, cfg(batch_size=32), seed=0)
    msg = str(err.value)
    assert msg.startswith("pretraining ran out of accelerator memory (CUDA out of memory.")
    assert msg.endswith("at batch size 32") and "\n" not in msg
    advice = "lower pretrain.batch_size, model size or pretrain.precision"
    assert explain(err.value) == f"{msg}; {advice}"


def test_per_view_batchnorm_normalises_each_view_by_its_own_images():
    """PerView runs the network on each half of the stacked views: in training mode its rows are
    those of two separate forwards, and differ from one forward of all 2N (BN over both)."""
    torch.manual_seed(0)
    encoder, head = build_model(3, 16, **MODEL)
    net = torch.nn.Sequential(encoder, head).double().train()
    a = torch.rand(8, 3, 16, 16, dtype=torch.float64)
    b = torch.rand(8, 3, 16, 16, dtype=torch.float64) * 0.5  # other statistics than a's
    per_view = train_module.PerView(net)(torch.cat([a, b]))
    torch.testing.assert_close(per_view, torch.cat([net(a), net(b)]), rtol=0, atol=0)
    assert not torch.allclose(per_view, net(torch.cat([a, b])), atol=1e-3)


def test_per_view_pretraining_is_reproducible_and_differs_from_joint():
    images = tiny_images()
    one = pretrain(images, MODEL, cfg(epochs=1, batchnorm="per_view"), seed=0)
    two = pretrain(images, MODEL, cfg(epochs=1, batchnorm="per_view"), seed=0)
    joint = pretrain(images, MODEL, cfg(epochs=1), seed=0)
    weights = [r.encoder.state_dict()["net.0.0.weight"] for r in (one, two, joint)]
    assert torch.equal(weights[0], weights[1])
    assert not torch.equal(weights[0], weights[2])
    assert math.isfinite(one.history[0]["loss"])

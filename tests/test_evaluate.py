import dataclasses

import numpy as np
import pytest
import torch
from conftest import tiny_prepared
from scipy import stats

from simclr.config import EvaluateConfig, FinetuneConfig, ModelConfig
from simclr.errors import PipelineError
from simclr.evaluate import (
    balanced_subset,
    evaluate_representations,
    fraction_key,
    label_subsets,
)
from simclr.features import extract_features
from simclr.finetune import finetune, finetune_steps
from simclr.models import build_model
from simclr.probe import accuracies, logistic_probe, validation_split
from simclr.significance import compare, paired_t_p, permutation_p
from tasks.labels import fraction_label

CPU = torch.device("cpu")
TINY_MODEL = ModelConfig(widths=(8, 16), blocks=(1, 1))


def tiny_encoder(seed=0):
    torch.manual_seed(seed)
    encoder, _ = build_model(TINY_MODEL, in_channels=1, image_size=8)
    return encoder


def tiny_data(n_train=60, n_test=30, classes=3, seed=0):
    return tiny_prepared(n_train, n_test, classes, seed)


def test_balanced_subset_is_per_class_seeded_and_at_least_one():
    labels = np.repeat(np.arange(5), [100, 50, 20, 10, 3])
    idx = balanced_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[idx]).tolist() == [10, 5, 2, 1, 1]
    assert np.array_equal(idx, balanced_subset(labels, 0.1, seed=0))
    assert not np.array_equal(idx, balanced_subset(labels, 0.1, seed=1))
    assert len(np.unique(idx)) == len(idx)


def test_label_subsets_come_from_the_training_split_only_with_one_run_at_full():
    labels = np.repeat(np.arange(4), 50)
    cfg = EvaluateConfig(fractions=(0.1, 1.0), seeds=3)
    subsets = label_subsets(labels, cfg, seed=7)
    assert [s for s, _ in subsets["0.1"]] == [7, 8, 9]
    for _, idx in subsets["0.1"]:
        assert idx.min() >= 0 and idx.max() < len(labels)  # indices into train, never test
        assert np.bincount(labels[idx]).tolist() == [5, 5, 5, 5]
    [(seed, full)] = subsets["1.0"]
    assert seed == 7 and np.array_equal(full, np.arange(len(labels)))


def test_validation_split_is_carved_from_the_subset_and_keeps_every_class():
    labels = np.repeat(np.arange(4), [10, 5, 2, 1])
    fit, val = validation_split(labels, 0.2, seed=0)
    assert set(fit).isdisjoint(val) and sorted([*fit, *val]) == list(range(len(labels)))
    assert set(labels[fit]) == {0, 1, 2, 3}  # a class's last image is never held out
    assert np.bincount(labels[val], minlength=4).tolist() == [2, 1, 1, 0]


def separable(n=400, dim=20, classes=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, dim)) * 5
    y = rng.integers(0, classes, n)
    return centers[y] + rng.normal(size=(n, dim)), y


def test_probe_separates_linearly_separable_features():
    x, y = separable()
    fit = logistic_probe(x[:300], y[:300], x[300:], (0.01, 0.1, 1.0, 10.0), 0.2, 500, seed=0)
    assert accuracies(fit.predictions, y[300:])[0] >= 0.99
    assert fit.validated and fit.C in (0.01, 0.1, 1.0, 10.0) and fit.val_accuracy >= 0.95


def test_probe_chooses_strong_regularisation_when_features_are_mostly_noise():
    """Few examples, 200 noise dimensions and 2 informative ones: the validation split must
    prefer a small C over the weakest regularisation in the grid."""
    rng = np.random.default_rng(1)
    y = np.arange(200) % 2
    x = rng.normal(size=(200, 202))
    x[:, :2] += (y[:, None] * 2 - 1) * 0.8
    fit = logistic_probe(x[:60], y[:60], x[60:], (1e-3, 1e-2, 1e-1, 1e2), 0.3, 1000, seed=0)
    assert fit.validated and fit.C < 1e2


def test_probe_without_room_for_a_validation_split_uses_the_grid_middle():
    x, y = separable(n=40, classes=4)
    one_each = np.array([np.flatnonzero(y == c)[0] for c in range(4)])
    fit = logistic_probe(x[one_each], y[one_each], x, (0.01, 0.1, 1.0, 10.0), 0.2, 500, seed=0)
    assert not fit.validated and fit.C == 1.0 and fit.val_accuracy is None


def test_accuracies_top1_and_mean_per_class():
    labels = np.array([0, 0, 0, 0, 1, 1])
    predictions = np.array([0, 0, 0, 0, 0, 1])
    top1, per_class = accuracies(predictions, labels)
    assert top1 == pytest.approx(5 / 6) and per_class == pytest.approx((1 + 0.5) / 2)


def test_paired_t_p_matches_the_formula():
    a, b = [0.80, 0.82, 0.79, 0.85, 0.81], [0.70, 0.75, 0.74, 0.73, 0.77]
    d = np.array(a) - np.array(b)
    t = d.mean() / (d.std(ddof=1) / np.sqrt(len(d)))
    assert paired_t_p(a, b) == pytest.approx(2 * stats.t.sf(abs(t), df=len(d) - 1), rel=1e-9)
    assert paired_t_p(a, a) == 1.0
    # A constant gap (up to float noise): the exact sign-flip bound, not p = 0.
    assert paired_t_p([0.5, 0.6, 0.7], [0.4, 0.5, 0.6]) == 0.25
    assert paired_t_p([0.75, 0.75], [0.5, 0.5]) == 0.5


def test_permutation_p_matches_exact_enumeration():
    rng = np.random.default_rng(0)
    a = rng.random(40) < 0.8
    b = rng.random(40) < 0.6
    d = (a.astype(float) - b)[a != b]
    signs = np.array(np.meshgrid(*[[-1, 1]] * len(d))).reshape(len(d), -1).T
    exact = np.mean(np.abs(signs @ d) >= abs(d.sum()) - 1e-9)
    assert permutation_p(a, b, seed=0) == pytest.approx(exact, abs=0.01)
    assert permutation_p(a, a) == 1.0


def test_compare_uses_seeds_when_there_are_several_and_predictions_otherwise():
    runs = lambda accs: [{"accuracy": x, "correct": np.ones(10, bool)} for x in accs]  # noqa: E731
    assert compare(runs([0.9, 0.8]), runs([0.5, 0.45]))["test"].startswith("paired t-test")
    one = compare(runs([0.9]), runs([0.5]))
    assert one["test"] == "paired permutation test on 10 test predictions"
    assert one["diff"] == pytest.approx(0.4)


def test_finetune_changes_a_copy_of_the_encoder_and_leaves_the_original():
    data = tiny_data()
    encoder = tiny_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    cfg = FinetuneConfig(epochs=3, min_steps=5, batch_size=16, crop_scale=(0.8, 1.0))
    model = finetune(encoder, data.train.images, data.train.labels, 3, cfg, 0, CPU)
    assert not model.training
    tuned = model[0].state_dict()
    assert any(not torch.equal(tuned[k], v) for k, v in before.items())
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_finetune_steps_respect_epochs_and_bounds():
    cfg = FinetuneConfig(epochs=20, min_steps=50, max_steps=200, batch_size=64)
    assert finetune_steps(14, cfg) == (14, 50)  # 20 passes of one batch: raised to min_steps
    assert finetune_steps(400, cfg) == (64, 125)
    assert finetune_steps(4000, cfg) == (64, 200)
    assert finetune_steps(4000, dataclasses.replace(cfg, max_steps=0)) == (64, 1250)


def test_feature_extraction_freezes_encoder_in_eval_mode():
    encoder = tiny_encoder()
    encoder.train()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    images = np.random.default_rng(0).integers(0, 256, (10, 8, 8, 1), dtype=np.uint8)
    feats = extract_features(encoder, images, CPU, batch_size=4)
    assert feats.shape == (10, 16)
    assert not encoder.training
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k  # BN running stats included


SMALL_EVAL = EvaluateConfig(
    fractions=(0.2, 1.0),
    seeds=2,
    C=(0.1, 1.0),
    knn_k=5,
    finetune=FinetuneConfig(epochs=2, min_steps=3, max_steps=6, batch_size=16),
)


def strip_timing(result: dict) -> dict:
    """The JSON part of a result: no timings, no prediction arrays."""
    return {k: v for k, v in result.items() if k not in ("seconds", "predictions")}


def test_evaluation_schema_baselines_significance_frozen_encoders_and_determinism():
    data = tiny_data()
    encoders = {"simclr": tiny_encoder(0), "random_init": tiny_encoder(1)}
    before = {n: {k: v.clone() for k, v in e.state_dict().items()} for n, e in encoders.items()}
    result = evaluate_representations(data, encoders, SMALL_EVAL, seed=0, device=CPU)

    for name, encoder in encoders.items():  # probes, kNN and fine-tuning left them as they were
        assert not encoder.training
        for k, v in encoder.state_dict().items():
            assert torch.equal(v, before[name][k]), (name, k)
    assert set(result["linear"]) == set(result["knn"]) == {"simclr", "random_init", "raw_pixels"}
    assert set(result["finetune"]) == {"simclr", "random_init"}  # raw pixels cannot be tuned
    for family in ("linear", "knn", "finetune"):
        for by_fraction in result[family].values():
            assert list(by_fraction) == ["0.2", "1.0"]
            assert by_fraction["0.2"]["n"] == 2 and by_fraction["1.0"]["n"] == 1
            for cell in by_fraction.values():
                assert 0 <= cell["mean"] <= 1 and 0 <= cell["mean_per_class"] <= 1
                assert cell["std"] >= 0 and len(cell["runs"]) == cell["n"]
    run = result["linear"]["simclr"]["0.2"]["runs"][0]
    assert run["C"] in SMALL_EVAL.C and isinstance(run["C_validated"], bool)
    sig = result["significance"]
    assert set(sig) == {"linear", "knn", "finetune"}
    assert set(sig["linear"]) == {"random_init", "raw_pixels"} and set(sig["finetune"]) == {
        "random_init"
    }
    assert sig["linear"]["raw_pixels"]["0.2"]["test"] == "paired t-test over 2 seeds"
    assert sig["linear"]["raw_pixels"]["1.0"]["test"].startswith("paired permutation test")
    assert all(0 < t["p"] <= 1 for fam in sig.values() for b in fam.values() for t in b.values())
    # Raw pixels see the bright quadrant directly: the probe gets it right.
    assert result["linear"]["raw_pixels"]["1.0"]["mean"] >= 0.9

    again = evaluate_representations(
        data,
        {"simclr": tiny_encoder(0), "random_init": tiny_encoder(1)},
        SMALL_EVAL,
        seed=0,
        device=CPU,
    )
    assert strip_timing(again) == strip_timing(result)
    for family, by_method in result["predictions"].items():
        for method, by_fraction in by_method.items():
            for key, predictions in by_fraction.items():
                assert np.array_equal(predictions, again["predictions"][family][method][key])


def test_finetune_off_leaves_the_family_out():
    cfg = dataclasses.replace(SMALL_EVAL, finetune=FinetuneConfig(epochs=0))
    result = evaluate_representations(tiny_data(), {"simclr": tiny_encoder()}, cfg, 0, CPU)
    assert "finetune" not in result and "finetune" not in result["significance"]
    assert set(result["linear"]) == {"simclr", "raw_pixels"}


def test_fraction_key_and_label():
    assert fraction_key(1) == "1.0" and fraction_key(0.01) == "0.01"
    assert [fraction_label(f) for f in (0.001, 0.004, 0.01, "0.1", 1)] == [
        "0.1%",
        "0.4%",
        "1%",
        "10%",
        "100%",
    ]


def test_out_of_memory_in_evaluation_names_the_batch_sizes_to_lower(monkeypatch):
    import simclr.evaluate as evaluate_module

    def out_of_memory(*args, **kwargs):  # what torch raises on a GPU, simulated on the CPU
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")

    monkeypatch.setattr(evaluate_module, "extract_features", out_of_memory)
    with pytest.raises(
        PipelineError, match=r"^evaluation ran out of accelerator memory \(CUDA "
    ) as e:
        evaluate_representations(tiny_data(), {"simclr": tiny_encoder()}, SMALL_EVAL, 0, CPU)
    lower = (
        f"lower evaluate.batch_size (now {SMALL_EVAL.batch_size}) or evaluate.finetune.batch_size"
    )
    assert str(e.value).endswith(lower)

from dataclasses import replace

import numpy as np
import pytest
import torch
from helpers import tiny_prepared
from scipy import stats

from flows.errors import explain
from simclr.errors import PipelineError
from simclr.evaluate import (
    Protocols,
    evaluate_representations,
    fraction_key,
    label_subsets,
)
from simclr.features import extract_features, for_inference
from simclr.finetune import finetune, finetune_budget, finetune_optimizer, finetune_steps
from simclr.models import build_model
from simclr.probe import accuracies, logistic_probe
from simclr.significance import compare, mcnemar_p, paired_t_p
from tasks.labels import fraction_label

CPU = torch.device("cpu")
TINY_MODEL = dict(widths=(8, 16), blocks=(1, 1))


def tiny_encoder(seed=0):
    torch.manual_seed(seed)
    encoder, _ = build_model(1, 8, **TINY_MODEL)
    return encoder


def tiny_data(n_train=60, n_test=30, classes=3, seed=0):
    return tiny_prepared(n_train, n_test, classes, seed)


def test_label_subsets_come_from_the_training_split_only_with_one_run_at_full():
    labels = np.repeat(np.arange(4), 50)
    subsets = label_subsets(labels, seed=7, fractions=(0.1, 1.0), seeds=3)
    assert [s for s, _ in subsets["0.1"]] == [7, 8, 9]
    for _, idx in subsets["0.1"]:
        assert idx.min() >= 0 and idx.max() < len(labels)  # indices into train, never test
        assert np.bincount(labels[idx]).tolist() == [5, 5, 5, 5]
    [(seed, full)] = subsets["1.0"]
    assert seed == 7 and np.array_equal(full, np.arange(len(labels)))


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


def paired(only_a: int, only_b: int, both: int = 7, neither: int = 3):
    """0/1 correctness of two methods with these counts of discordant and concordant images,
    shuffled together."""
    a = np.repeat([True, False, True, False], [only_a, only_b, both, neither])
    b = np.repeat([False, True, True, False], [only_a, only_b, both, neither])
    order = np.random.default_rng(only_a * 100 + only_b).permutation(len(a))
    return a[order], b[order]


@pytest.mark.parametrize(
    ("only_a", "only_b", "expected"),
    [
        (0, 5, 2 / 2**5),  # all 5 discordant images one way: 2 x (1/2)^5
        (1, 9, 2 * (1 + 10) / 2**10),  # P(X <= 1) = (1 + 10) / 2^10, twice
        (9, 1, 2 * (1 + 10) / 2**10),  # symmetric
        (4, 4, 1.0),
        (0, 0, 1.0),  # the methods agree everywhere
    ],
)
def test_mcnemar_p_is_the_exact_binomial_test_of_the_discordant_images(only_a, only_b, expected):
    a, b = paired(only_a, only_b)
    assert mcnemar_p(a, b) == pytest.approx(expected, rel=1e-12)
    if only_a + only_b:
        assert mcnemar_p(a, b) == stats.binomtest(only_a, only_a + only_b, 0.5).pvalue


def test_mcnemar_p_is_large_sample_exact_without_a_floor():
    a, b = paired(3, 60, both=900, neither=37)
    p = mcnemar_p(a, b)
    assert p == stats.binomtest(3, 63, 0.5).pvalue and 0 < p < 1e-12  # 1/10001 was the floor


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mcnemar_p_equals_the_full_enumeration_of_sign_flips(seed):
    """The paired permutation test it replaces, enumerated exactly: every one of the 2^m sign
    flips of the per-image difference in correctness (m discordant images; concordant ones
    add 0 whatever their sign), counting those at least as extreme as the observed one."""
    rng = np.random.default_rng(seed)
    a = rng.random(24) < 0.7
    b = rng.random(24) < 0.5
    d = a.astype(np.int64) - b.astype(np.int64)
    nonzero = d[d != 0]
    signs = np.array(np.meshgrid(*[[-1, 1]] * len(nonzero))).reshape(len(nonzero), -1).T
    extreme = np.sum(np.abs(signs @ nonzero) >= abs(d.sum()))  # integers: no tolerance needed
    assert 8 <= len(nonzero) <= 18  # a real test, and 2^m stays small
    # binomtest sums floating-point cdf and sf terms: equal to the exact fraction up to rounding
    assert mcnemar_p(a, b) == pytest.approx(extreme / 2 ** len(nonzero), rel=1e-12)


def test_compare_uses_seeds_when_there_are_several_and_predictions_otherwise():
    runs = lambda accs: [{"accuracy": x, "correct": np.ones(10, bool)} for x in accs]  # noqa: E731
    assert compare(runs([0.9, 0.8]), runs([0.5, 0.45]))["test"].startswith("paired t-test")
    one = compare(runs([0.9]), runs([0.5]))
    assert one["test"] == "exact McNemar test on 10 test predictions"
    assert one["diff"] == pytest.approx(0.4)


def test_finetune_changes_a_copy_of_the_encoder_and_leaves_the_original():
    data = tiny_data()
    encoder = tiny_encoder()
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    cfg = dict(epochs=3, min_steps=5, batch_size=16, crop_scale=(0.8, 1.0))
    model = finetune(encoder, data.train.images, data.train.labels, 3, 0, CPU, **cfg)
    assert not model.training
    tuned = model[0].state_dict()
    assert any(not torch.equal(tuned[k], v) for k, v in before.items())
    for k, v in encoder.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_finetune_steps_respect_epochs_and_bounds():
    cfg = dict(epochs=20, min_steps=50, max_steps=200, batch_size=64)
    assert finetune_steps(14, **cfg) == (14, 50)  # 20 passes of one batch: raised to min_steps
    assert finetune_steps(400, **cfg) == (64, 125)
    assert finetune_steps(4000, **cfg) == (64, 200)
    assert finetune_steps(4000, **{**cfg, "max_steps": 0}) == (64, 1250)


def test_finetune_budget_says_which_bound_set_the_steps():
    cfg = dict(epochs=20, min_steps=50, max_steps=200, batch_size=64)
    assert finetune_budget(14, **cfg) == {
        "batch": 14,
        "steps": 50,
        "passes": 50,
        "bound": "min_steps",
    }
    assert finetune_budget(400, **cfg) == {
        "batch": 64,
        "steps": 125,
        "passes": 20,
        "bound": "epochs",
    }
    cut = finetune_budget(4000, **cfg)  # 1,250 steps asked: cut to 200, 3.2 passes of 20
    assert cut == {"batch": 64, "steps": 200, "passes": 3.2, "bound": "max_steps"}


def test_finetune_optimizer_decays_weights_only_and_follows_the_cosine_without_warmup():
    model = torch.nn.Sequential(tiny_encoder(), torch.nn.Linear(16, 3))
    optimizer, schedule = finetune_optimizer(model, 7, lr=0.2, momentum=0.9, weight_decay=0.01)
    decayed = {
        id(p) for g in optimizer.param_groups if g["weight_decay"] == 0.01 for p in g["params"]
    }
    for module in model.modules():  # BN scales and shifts, and biases, are not decayed
        bn = isinstance(module, torch.nn.modules.batchnorm._BatchNorm)
        for name, p in module.named_parameters(recurse=False):
            assert (id(p) in decayed) == (not bn and name != "bias"), (module, name)
    assert all(g["nesterov"] and g["momentum"] == 0.9 for g in optimizer.param_groups)
    lrs = []
    for _ in range(8):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        schedule.step()
    expected = 0.2 * 0.5 * (1 + np.cos(np.pi * np.arange(8, dtype=np.float64) / 7))
    np.testing.assert_allclose(lrs, expected, rtol=1e-15, atol=1e-16)


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


@pytest.mark.parametrize(
    "cfg, size",
    [(TINY_MODEL, 8), ({"encoder": "resnet18"}, 32), ({"encoder": "resnet50"}, 96)],
)
def test_inference_copy_folds_every_batchnorm_and_computes_the_same_function(cfg, size):
    torch.manual_seed(0)
    encoder, _ = build_model(3, size, **cfg)
    model = torch.nn.Sequential(encoder, torch.nn.Linear(encoder.out_dim, 5))
    with torch.no_grad():  # running statistics away from (0, 1), so that folding them matters
        for bn in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):
            bn.running_mean.uniform_(-0.5, 0.5)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.uniform_(0.5, 1.5)
    model.double().train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    folded = for_inference(model)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert not model.training  # the original is switched to eval mode, and otherwise untouched
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    x = torch.rand(4, 3, size, size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-9, atol=1e-9)


SMALL_EVAL = Protocols(
    fractions=(0.2, 1.0),
    seeds=2,
    C=(0.1, 1.0),
    knn_k=5,
    finetune=dict(epochs=2, min_steps=3, max_steps=6, batch_size=16),
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
    for protocol in ("linear", "knn", "finetune"):
        subsets = SMALL_EVAL.finetune_seeds if protocol == "finetune" else SMALL_EVAL.seeds
        for by_fraction in result[protocol].values():
            assert list(by_fraction) == ["0.2", "1.0"]
            assert by_fraction["0.2"]["n"] == subsets == (1 if protocol == "finetune" else 2)
            assert by_fraction["1.0"]["n"] == 1
            for cell in by_fraction.values():
                assert 0 <= cell["mean"] <= 1 and 0 <= cell["mean_per_class"] <= 1
                assert cell["std"] >= 0 and len(cell["runs"]) == cell["n"]
    run = result["linear"]["simclr"]["0.2"]["runs"][0]
    assert run["C"] in SMALL_EVAL.C and isinstance(run["C_validated"], bool)
    tuned = result["finetune"]["simclr"]["1.0"]["runs"][0]  # every training image, batch 16
    n = result["finetune"]["simclr"]["1.0"]["train_images"]
    expected = finetune_budget(n, **SMALL_EVAL.finetune)
    assert {k: tuned[k] for k in expected} == expected and tuned["steps"] <= 6
    seeds = {
        p: [r["seed"] for r in result[p]["random_init"]["0.2"]["runs"]]
        for p in ("linear", "finetune")
    }
    assert seeds["finetune"] == seeds["linear"][:1]  # the first of the probes' label subsets
    sig = result["significance"]
    assert set(sig) == {"linear", "knn", "finetune"}
    assert sig["finetune"]["random_init"]["0.2"]["test"].startswith("exact McNemar test on")
    assert set(sig["linear"]) == {"random_init", "raw_pixels"} and set(sig["finetune"]) == {
        "random_init"
    }
    assert sig["linear"]["raw_pixels"]["0.2"]["test"] == "paired t-test over 2 seeds"
    assert sig["linear"]["raw_pixels"]["1.0"]["test"].startswith("exact McNemar test on")
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
    for protocol, by_method in result["predictions"].items():
        for method, by_fraction in by_method.items():
            for key, predictions in by_fraction.items():
                assert np.array_equal(predictions, again["predictions"][protocol][method][key])


def test_finetune_off_leaves_the_family_out():
    cfg = replace(SMALL_EVAL, finetune={"epochs": 0})
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
    assert str(e.value).endswith(f"at batch size {SMALL_EVAL.batch_size}")
    lower = "lower evaluate.batch_size or evaluate.finetune.batch_size"
    assert explain(e.value) == f"{e.value}; {lower}"


def test_a_knn_k_beyond_the_labelled_training_images_is_an_error_not_a_clip():
    data = tiny_data()  # 60 training images; the 0.2 fraction's subsets hold 12, below k
    encoders = {"simclr": tiny_encoder()}
    too_many = replace(SMALL_EVAL, knn_k=61)
    with pytest.raises(PipelineError) as e:
        evaluate_representations(data, encoders, too_many, 0, CPU)
    assert explain(e.value) == (
        "params.yaml: evaluate.knn_k = 61 is more than the 60 labelled training images of the "
        "dataset; allowed: at most 60"
    )

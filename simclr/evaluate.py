"""Linear evaluation: a logistic-regression probe on frozen features at label fractions,
with the baselines that give it meaning (random-init encoder, raw pixels)."""

from __future__ import annotations

import logging

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from simclr.config import EvaluateConfig
from simclr.data.prepared import Prepared, read_rows
from simclr.device import to_images
from simclr.models import Encoder

log = logging.getLogger("simclr.evaluate")

METHODS = ("simclr", "random_init", "raw_pixels")


@torch.no_grad()
def extract_features(
    encoder: Encoder, images: np.ndarray, device: torch.device, batch_size: int = 512
) -> np.ndarray:
    """h = f(x) for uint8 NHWC images, with the encoder in eval mode (BN uses running stats)."""
    encoder.eval()
    feats = [
        encoder(to_images(read_rows(images, slice(i, i + batch_size)), device))
        .float()
        .cpu()
        .numpy()
        for i in range(0, len(images), batch_size)
    ]
    return np.concatenate(feats)


def raw_pixels(images: np.ndarray) -> np.ndarray:
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255


@torch.no_grad()
def knn_accuracy(
    train_x: torch.Tensor | np.ndarray,
    train_y: torch.Tensor | np.ndarray,
    test_x: torch.Tensor | np.ndarray,
    test_y: torch.Tensor | np.ndarray,
    k: int = 200,
    temperature: float = 0.1,
    chunk: int = 1024,
) -> float:
    """Weighted cosine kNN (Wu et al. 2018, the usual SimCLR monitor): each test feature votes
    with its k most cosine-similar training features, each weighted exp(similarity / T)."""
    train_x = F.normalize(torch.as_tensor(train_x).float(), dim=1)
    test_x = F.normalize(torch.as_tensor(test_x).float(), dim=1)
    train_y = torch.as_tensor(train_y).long().to(train_x.device)
    test_y = torch.as_tensor(test_y).long().to(train_x.device)
    n_classes = int(max(train_y.max(), test_y.max())) + 1
    k = min(k, len(train_x))
    correct = 0
    for i in range(0, len(test_x), chunk):
        sim, idx = (test_x[i : i + chunk] @ train_x.T).topk(k, dim=1)
        votes = torch.zeros(len(sim), n_classes, device=sim.device, dtype=sim.dtype)
        votes.scatter_add_(1, train_y[idx], torch.exp(sim / temperature))
        correct += int((votes.argmax(1) == test_y[i : i + chunk]).sum())
    return correct / len(test_x)


def fraction_key(fraction: float) -> str:
    """The metrics key of a label fraction: 0.01 -> "0.01", 1 -> "1.0"."""
    return str(float(fraction))


def balanced_subset(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices of `fraction` of each class (at least one image per class), chosen with `seed`."""
    rng = np.random.default_rng(seed)
    picked = []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        k = max(1, int(round(fraction * len(idx))))
        picked.append(rng.choice(idx, size=min(k, len(idx)), replace=False))
    return np.sort(np.concatenate(picked))


def linear_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    C: float,
    max_iter: int,
) -> float:
    """Top-1 test accuracy of standardized features + multinomial logistic regression (L-BFGS)."""
    if len(np.unique(train_y)) < 2:
        # One class only (possible at tiny fractions of 2-class sets): predict it.
        return float(np.mean(test_y == train_y[0]))
    clf = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    clf.fit(train_x, train_y)
    return float(np.mean(clf.predict(test_x) == test_y))


def probe_at_fractions(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    cfg: EvaluateConfig,
    seed: int,
) -> dict[str, dict]:
    """{fraction: {mean, std, n, runs}}. Fraction 1.0 is one subset (the whole split), so n=1."""
    out = {}
    for fraction in cfg.fractions:
        seeds = [seed] if fraction >= 1.0 else [seed + i for i in range(cfg.seeds)]
        runs = []
        for s in seeds:
            idx = balanced_subset(train_y, fraction, s)
            runs.append(
                linear_probe(train_x[idx], train_y[idx], test_x, test_y, cfg.C, cfg.max_iter)
            )
        out[fraction_key(fraction)] = {
            "mean": float(np.mean(runs)),
            "std": float(np.std(runs)),
            "n": len(runs),
            "runs": runs,
            "train_images": int(len(balanced_subset(train_y, fraction, seeds[0]))),
        }
    return out


def linear_evaluation(
    data: Prepared,
    encoders: dict[str, Encoder],
    cfg: EvaluateConfig,
    seed: int,
    device: torch.device,
) -> dict:
    """Probe every encoder in `encoders` (name -> encoder) and raw pixels at every fraction.

    Returns {"linear": {method: {fraction: {mean, std, n, ...}}}}.
    """
    features = {
        name: (
            extract_features(enc, data.train.images, device, cfg.batch_size),
            extract_features(enc, data.test.images, device, cfg.batch_size),
        )
        for name, enc in encoders.items()
    }
    features["raw_pixels"] = (raw_pixels(data.train.images), raw_pixels(data.test.images))
    linear = {}
    for name, (train_x, test_x) in features.items():
        linear[name] = probe_at_fractions(
            train_x, data.train.labels, test_x, data.test.labels, cfg, seed
        )
        summary = ", ".join(f"{k}: {v['mean']:.4f}" for k, v in linear[name].items())
        log.info("linear probe %s: %s", name, summary)
    return {"linear": linear}

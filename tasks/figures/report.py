"""The report's figures, from files the stages wrote. One colour per method and one line style
per protocol in every figure, so that a method reads the same everywhere."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from simclr.io import write_atomic

METHOD_COLORS = {"simclr": "#1f77b4", "random_init": "#ff7f0e", "raw_pixels": "#2ca02c"}
METHOD_LABELS = {"simclr": "SimCLR", "random_init": "random init", "raw_pixels": "raw pixels"}
PROTOCOL_STYLES = {"linear": "-", "knn": ":", "finetune": "--"}
PROTOCOL_LABELS = {"linear": "linear probe", "knn": "kNN", "finetune": "fine-tune"}


def save_png(fig: Figure, path: Path) -> Path:
    fig.tight_layout()
    return write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=100))


def read_curve(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """A DVCLive .tsv (step, value) as two arrays; empty when the file is missing."""
    if not path.is_file():
        return np.array([]), np.array([])
    with path.open() as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    data = np.array([[float(r[0]), float(r[1])] for r in rows if len(r) >= 2]).reshape(-1, 2)
    return data[:, 0], data[:, 1]


CURVES = (
    ("loss", "NT-Xent loss", "loss"),
    ("lr", "learning rate", "learning rate"),
    ("knn_accuracy", "kNN accuracy (labelled split)", "top-1 accuracy"),
    ("images_per_s", "throughput", "images / s"),
)


def pretraining_curves(plots_dir: Path, path: Path) -> Path:
    """Loss, learning rate, kNN monitor and images/s by epoch (DVCLive's files)."""
    fig = Figure(figsize=(10, 6.5))
    axes = fig.subplots(2, 2).ravel()
    for ax, (name, title, ylabel) in zip(axes, CURVES, strict=True):
        x, y = read_curve(plots_dir / f"{name}.tsv")
        ax.plot(x + 1, y, marker="o" if len(x) < 30 else None, color=METHOD_COLORS["simclr"])
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    fig.suptitle("SimCLR pretraining")
    return save_png(fig, path)


def accuracy_vs_fraction(results: dict[str, dict], path: Path) -> Path:
    """One panel per dataset: test accuracy against the labelled fraction (log axis), a line per
    protocol x method with ± std bars. `results`: dataset -> details.json."""
    n = len(results)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(6 * cols, 4.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (dataset, details) in zip(axes, results.items(), strict=False):
        for protocol, style in PROTOCOL_STYLES.items():
            for method, by_fraction in details.get(protocol, {}).items():
                fractions = sorted(by_fraction, key=float)
                x = [float(f) * 100 for f in fractions]
                y = [by_fraction[f]["mean"] for f in fractions]
                err = [by_fraction[f]["std"] for f in fractions]
                ax.errorbar(
                    x,
                    y,
                    yerr=err,
                    linestyle=style,
                    marker="o",
                    capsize=3,
                    color=METHOD_COLORS.get(method),
                    label=f"{METHOD_LABELS.get(method, method)}, {PROTOCOL_LABELS[protocol]}",
                )
        ax.set_xscale("log")
        ticks = sorted(
            {
                float(f) * 100
                for protocol in PROTOCOL_STYLES
                for by_fraction in details.get(protocol, {}).values()
                for f in by_fraction
            }
        )
        ax.set_xticks(ticks, [f"{t:g}%" for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("labelled training images (% of each class)")
        ax.set_ylabel("test top-1 accuracy")
        ax.set_title(dataset)
        ax.grid(alpha=0.3, which="both")
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.14 if rows == 1 else 0.075, 1, 1))
    return write_atomic(path, lambda p: fig.savefig(p, format="png", dpi=100))


def sample_grid(
    datasets: dict[str, tuple[np.ndarray, np.ndarray, list[str]]], path: Path, per_dataset: int = 10
) -> Path:
    """A row of training images per dataset, each titled with its class. `datasets`: name ->
    (uint8 NHWC images, labels, class names); the first image of as many classes as fit."""
    fig = Figure(figsize=(1.3 * per_dataset, 1.5 * len(datasets)))
    axes = fig.subplots(len(datasets), per_dataset, squeeze=False)
    for r, (name, (images, labels, classes)) in enumerate(datasets.items()):
        picks = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
        rest = [i for i in range(len(labels)) if i not in set(picks)]
        picks = (picks + rest)[:per_dataset]
        for c in range(per_dataset):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c >= len(picks):
                ax.set_visible(False)
                continue
            img = images[picks[c]]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=255)
            ax.set_title(str(classes[labels[picks[c]]])[:12], fontsize=7)
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle("Training images, one per class first")
    return save_png(fig, path)


def embedding(
    points: np.ndarray, labels: np.ndarray, classes: list[str], title: str, path: Path
) -> Path:
    """A 2-D embedding of test features, coloured by class."""
    fig = Figure(figsize=(6.5, 5.5))
    ax = fig.subplots()
    cmap = "tab10" if len(classes) <= 10 else "tab20"
    sc = ax.scatter(
        points[:, 0], points[:, 1], c=labels, cmap=cmap, s=8, vmin=-0.5, vmax=len(classes) - 0.5
    )
    cbar = fig.colorbar(sc, ax=ax, ticks=range(len(classes)))
    cbar.ax.set_yticklabels([str(c)[:14] for c in classes], fontsize=7)
    cbar.set_label("class")
    ax.set_xlabel("t-SNE 1")
    ax.set_ylabel("t-SNE 2")
    ax.set_title(title)
    return save_png(fig, path)


def confusion(
    labels: np.ndarray, predictions: np.ndarray, classes: list[str], title: str, path: Path
) -> Path:
    """Row-normalised confusion matrix (each true class sums to 1), counts in the cells."""
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (labels, predictions), 1)
    rates = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    fig = Figure(figsize=(1.0 + 0.55 * k, 0.8 + 0.5 * k))
    ax = fig.subplots()
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                counts[i, j],
                ha="center",
                va="center",
                fontsize=7,
                color="white" if rates[i, j] > 0.5 else "black",
            )
    names = [str(c)[:10] for c in classes]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="share of the true class")
    return save_png(fig, path)

"""The evaluate stage's figures: a 2-D embedding of the test features and the linear probe's
confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tasks.figures import plain, save_png


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
    cbar.ax.set_yticklabels([plain(c, 14) for c in classes], fontsize=7)
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
            color = "white" if rates[i, j] > 0.5 else "black"
            ax.text(j, i, counts[i, j], ha="center", va="center", fontsize=7, color=color)
    names = [plain(c, 10) for c in classes]
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(k), names, fontsize=7)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=9)
    fig.colorbar(im, ax=ax, label="share of the true class")
    return save_png(fig, path)

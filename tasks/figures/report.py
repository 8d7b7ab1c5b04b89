"""The report stage's figures, from the data the report reads: pretraining curves, accuracy
against the labelled fraction, and sample images. One colour per method and one line style per
protocol in every figure, so that a method reads the same everywhere."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from tasks.figures import plain, save_png
from tasks.labels import PROTOCOL_LABELS, method_label

METHOD_COLORS = {"simclr": "#1f77b4", "random_init": "#ff7f0e", "raw_pixels": "#2ca02c"}
PROTOCOL_STYLES = {"linear": "-", "knn": ":", "finetune": "--"}

# DVCLive metric -> (panel title, y label), in panel order.
CURVES = {
    "loss": ("NT-Xent loss", "loss"),
    "lr": ("learning rate", "learning rate"),
    "knn_accuracy": ("kNN accuracy (labelled split)", "top-1 accuracy"),
    "images_per_s": ("throughput", "images / s"),
}


def pretraining_curves(curves: dict[int, dict[str, tuple]], path: Path) -> Path:
    """Loss, learning rate, kNN monitor and images/s by epoch, one line per pretraining
    replica. `curves`: replica -> metric -> (steps from 0, values); a missing metric leaves its
    panel empty."""
    fig = Figure(figsize=(10, 6.5))
    axes = fig.subplots(2, 2).ravel()
    empty = (np.array([]), np.array([]))
    shades = np.linspace(1.0, 0.45, max(len(curves), 1))  # replicas: the SimCLR colour, lighter
    for ax, (name, (title, ylabel)) in zip(axes, CURVES.items(), strict=True):
        for shade, (replica, by_metric) in zip(shades, curves.items(), strict=False):
            x, y = by_metric.get(name, empty)
            ax.plot(
                x + 1,
                y,
                marker="o" if len(x) < 30 else None,
                color=METHOD_COLORS["simclr"],
                alpha=float(shade),
                label=f"replica {replica}",
            )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    if len(curves) > 1:
        axes[0].legend(fontsize=8)
    fig.suptitle("SimCLR pretraining")
    return save_png(fig, path)


def _fraction_panel(ax, dataset: str, details: dict) -> None:
    """One dataset's accuracy against the labelled fraction: a line per protocol x method."""
    ticks = set()
    for protocol, style in PROTOCOL_STYLES.items():
        for method, by_fraction in details.get(protocol, {}).items():
            fractions = sorted(by_fraction, key=float)
            x = [float(f) * 100 for f in fractions]
            ticks.update(x)
            ax.errorbar(
                x,
                [by_fraction[f]["mean"] for f in fractions],
                yerr=[by_fraction[f]["std"] for f in fractions],
                linestyle=style,
                marker="o",
                capsize=3,
                color=METHOD_COLORS.get(method),
                label=f"{method_label(method)}, {PROTOCOL_LABELS[protocol]}",
            )
    ax.set_xscale("log")
    ax.set_xticks(sorted(ticks), [f"{t:g}%" for t in sorted(ticks)])
    ax.minorticks_off()
    ax.set_xlabel("labelled training images (% of each class)")
    ax.set_ylabel("test top-1 accuracy")
    ax.set_title(dataset)
    ax.grid(alpha=0.3, which="both")


def accuracy_vs_fraction(results: dict[str, dict], path: Path) -> Path:
    """One panel per dataset: test accuracy against the labelled fraction (log axis), a line per
    protocol x method with ± std bars. `results`: dataset -> details.json."""
    n = len(results)
    cols = min(n, 2)
    rows = (n + cols - 1) // cols
    fig = Figure(figsize=(6 * cols, 4.2 * rows))
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, (dataset, details) in zip(axes, results.items(), strict=False):
        _fraction_panel(ax, dataset, details)
    for ax in axes[n:]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    return save_png(fig, path, layout=(0, 0.14 if rows == 1 else 0.075, 1, 1))


def sample_grid(
    datasets: dict[str, tuple[np.ndarray, np.ndarray, list[str]]], path: Path, per_dataset: int = 10
) -> Path:
    """A row of training images per dataset, each titled with its class. `datasets`: name ->
    (uint8 NHWC images, labels, class names); the first image of as many classes as fit."""
    fig = Figure(figsize=(1.3 * per_dataset, 1.5 * len(datasets)))
    axes = fig.subplots(len(datasets), per_dataset, squeeze=False)
    for r, (name, (images, labels, classes)) in enumerate(datasets.items()):
        picks = [int(np.flatnonzero(labels == c)[0]) for c in np.unique(labels)]
        first = set(picks)
        rest = [i for i in range(len(labels)) if i not in first]
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
            ax.set_title(plain(classes[labels[picks[c]]], 12), fontsize=7)
            if c == 0:
                ax.set_ylabel(name)
    fig.suptitle("Training images, one per class first")
    return save_png(fig, path)

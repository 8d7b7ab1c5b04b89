"""The pretrain stage's figure: SimCLR view pairs of training images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure

from simclr.augment import simclr_view
from simclr.device import to_images
from tasks.figures import save_png


def view_pairs_figure(images: np.ndarray, augment: dict, seed: int, path: Path, n: int = 8) -> Path:
    """n training images (rows of the grid: source, view 1, view 2) as SimCLR augments them
    (`augment`: simclr_view's keyword arguments)."""
    pick = np.random.default_rng(seed).choice(len(images), size=min(n, len(images)), replace=False)
    x = to_images(images[np.sort(pick)], torch.device("cpu"))
    g = torch.Generator().manual_seed(seed)
    rows = [x, simclr_view(x, g, **augment), simclr_view(x, g, **augment)]
    fig = Figure(figsize=(1.2 * len(x), 3.9))
    axes = fig.subplots(3, len(x), squeeze=False)
    for r, (label, row) in enumerate(zip(("source", "view 1", "view 2"), rows, strict=True)):
        for c in range(len(x)):
            img = row[c].permute(1, 2, 0).clamp(0, 1).numpy()
            ax = axes[r][c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(label)
    fig.suptitle("SimCLR view pairs of training images")
    return save_png(fig, path)

"""SimCLR as a library: data sources, augmentation, models, loss, training, evaluation.

Imports neither prefect nor dvc; the pipeline layers (tasks/, flows/) build on it.
`from simclr import load_encoder` is the pretrained encoder with its preprocessing
(simclr/encoder.py).
"""

import importlib

# Imported on first use, so that `import simclr.<module>` (every stage) does not load it
PUBLIC = {"load_encoder": "simclr.encoder", "Preprocessing": "simclr.encoder"}
__all__ = list(PUBLIC)


def __getattr__(name: str):
    if name in PUBLIC:
        return getattr(importlib.import_module(PUBLIC[name]), name)
    raise AttributeError(f"module 'simclr' has no attribute {name!r}")

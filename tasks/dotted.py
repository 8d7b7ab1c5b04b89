"""Params as dotted keys ("pretrain.epochs"), the way `dvc exp run -S` and people name them."""

from __future__ import annotations

from simclr.config import DatasetConfig, Params, to_dict


def flatten(tree, prefix: str = "") -> dict:
    """Nested mappings as one level of dotted keys: {"a": {"b": 1}} -> {"a.b": 1}."""
    if isinstance(tree, dict):
        out = {}
        for k, v in tree.items():
            out.update(flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: tree}


def changed_params(params: Params) -> dict:
    """Dotted key -> value of every param whose value is not the built-in default (each dataset
    is compared with a default entry of its own source)."""
    # Built without validation: the default pretrain.dataset need not be one of these.
    sources = {
        n: DatasetConfig.model_construct(source=d.source) for n, d in params.datasets.items()
    }
    defaults = flatten(to_dict(Params.model_construct(datasets=sources)))
    return {k: v for k, v in flatten(to_dict(params)).items() if defaults.get(k, object()) != v}

"""Display names, the one place for them: of the methods, the evaluation protocols and the label
fractions, in every table, figure and artifact people read. The keys are those of the metrics
files (simclr/evaluate.py); the order of each mapping is the order people see."""

from __future__ import annotations

METHOD_LABELS = {"simclr": "SimCLR", "random_init": "random init", "raw_pixels": "raw pixels"}

# Short names (figure legends, table columns) and section titles of the protocols.
PROTOCOL_LABELS = {"linear": "linear probe", "knn": "kNN", "finetune": "fine-tune"}
PROTOCOL_TITLES = {
    "linear": "Linear probe (logistic regression on frozen h)",
    "knn": "kNN (weighted cosine on frozen h)",
    "finetune": "Fine-tuning (encoder + linear head on the labelled subset)",
}


def method_label(method: str) -> str:
    """A method's display name; a method without one shows its key."""
    return METHOD_LABELS.get(method, method)


def methods_in_order(methods) -> list[str]:
    """`methods` with the known ones first, in display order, then the rest as given."""
    methods = list(methods)
    return [m for m in METHOD_LABELS if m in methods] + [
        m for m in methods if m not in METHOD_LABELS
    ]


def fraction_label(fraction: float | str) -> str:
    """A label fraction as people read it: 0.01 -> "1%", 0.005 -> "0.5%", "1.0" -> "100%"."""
    return f"{float(fraction) * 100:g}%"

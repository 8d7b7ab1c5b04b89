"""The data of dvc.yaml's plots that no stage logs as it runs: the linear probe by labelled
fraction (reports/plots/linear_fractions.csv)."""

from __future__ import annotations

from tasks.labels import METHOD_LABELS


def linear_fractions_csv(details: dict) -> str:
    """The pretraining set's linear probe by labelled fraction, one column per method: the data
    of dvc.yaml's "Linear probe against labelled fraction" plot."""
    linear = details["linear"]
    methods = [m for m in METHOD_LABELS if m in linear]  # the plot's columns in dvc.yaml
    lines = ["labels_percent," + ",".join(methods)]
    for fraction in sorted(linear["simclr"], key=float):
        values = ",".join(f"{linear[m][fraction]['mean']:.6f}" for m in methods)
        lines.append(f"{float(fraction) * 100:g},{values}")
    return "\n".join(lines) + "\n"

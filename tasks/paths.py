"""Where the stages read and write, relative to the repository root (as in dvc.yaml)."""

from pathlib import Path

PREPARED = Path("data/prepared")
CHECKPOINT = Path("models/simclr.pt")
REPORTS = Path("reports")
FIGURES = REPORTS / "figures"
PRETRAIN_REPORTS = REPORTS / "pretrain"  # DVCLive's per-epoch metrics and curves
# What differs between runs that give the same checkpoint: timings, the machine, the git commit
PRETRAIN_RUN = PRETRAIN_REPORTS / "run.json"
# Resumable training states: outside every DVC output (DVC deletes outputs before a stage
# runs), git- and dvc-ignored, one file per hash of the stage's inputs.
RESUME = Path(".resume")


def prepared_root(dataset: str) -> Path:
    return PREPARED / dataset

"""Where the stages read and write, relative to the repository root (as in dvc.yaml)."""

from pathlib import Path

PREPARED = Path("data/prepared")
CHECKPOINT = Path("models/simclr.pt")
REPORTS = Path("reports")


def prepared_root(dataset: str) -> Path:
    return PREPARED / dataset

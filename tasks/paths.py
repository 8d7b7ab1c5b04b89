"""Where the stages read and write, relative to the repository root (as in dvc.yaml). Every
path a stage or the report names comes from here."""

from pathlib import Path

PREPARED = Path("data/prepared")
CHECKPOINT = Path("models/simclr.pt")
REPORTS = Path("reports")
# Resumable training states: outside every DVC output (DVC deletes outputs before a stage
# runs), git- and dvc-ignored, one file per hash of the stage's inputs.
RESUME = Path(".resume")

# validate
VALIDATION = REPORTS / "validation"
VALIDATION_RESULTS = VALIDATION / "results"
VALIDATION_DOCS = VALIDATION / "docs"  # Great Expectations Data Docs

# pretrain
PRETRAIN_REPORTS = REPORTS / "pretrain"  # DVCLive's per-epoch metrics and curves
PRETRAIN_METRICS = PRETRAIN_REPORTS / "metrics.json"
PRETRAIN_CURVES = PRETRAIN_REPORTS / "plots" / "metrics"  # one <metric>.tsv per logged metric
# What differs between runs that give the same checkpoint: timings, the machine, the git commit
PRETRAIN_RUN = PRETRAIN_REPORTS / "run.json"

# evaluate and transfer@<dataset>: metrics.json (headline numbers) and details.json beside it
EVALUATE = REPORTS / "evaluate"
TRANSFER = REPORTS / "transfer"
METRICS = "metrics.json"
DETAILS = "details.json"

# figures, each written by the stage that has its data
FIGURES = REPORTS / "figures"
VIEWS_FIGURE = FIGURES / "views.png"  # pretrain
EMBEDDING_FIGURE = FIGURES / "embedding.png"  # evaluate
CONFUSION_FIGURE = FIGURES / "confusion.png"  # evaluate
CURVES_FIGURE = FIGURES / "curves.png"  # report
FRACTIONS_FIGURE = FIGURES / "fractions.png"  # report
SAMPLES_FIGURE = FIGURES / "samples.png"  # report

# report
REPORT_MD = REPORTS / "report.md"
REPORT_HTML = REPORTS / "report.html"
PLOTS = REPORTS / "plots"
LINEAR_FRACTIONS_PLOT = PLOTS / "linear_fractions.csv"  # dvc.yaml's "Linear probe" plot
# Where the README suggests `python -m flows.compare --output` writes the experiments table:
# not a DVC output (experiments are not a stage's input).
EXPERIMENTS_TABLE = REPORTS / "experiments.md"


def prepared_root(dataset: str) -> Path:
    return PREPARED / dataset


def validation_result(dataset: str) -> Path:
    return VALIDATION_RESULTS / f"{dataset}.json"


def transfer_dir(dataset: str) -> Path:
    return TRANSFER / dataset

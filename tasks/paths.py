"""Where the stages read and write, relative to the repository root (as in dvc.yaml). Every
path a stage or the report names comes from here.

Each pretraining-seed replica r (params.yaml `replicas`) has its own checkpoint and its own
folder under every per-replica stage's reports: reports/pretrain/<r>/, reports/evaluate/<r>/,
reports/transfer/<dataset>/<r>/. The summarize stage pools them into reports/summary.json and
the headline metrics reports/metrics.json."""

from pathlib import Path

PREPARED = Path("data/prepared")
MODELS = Path("models")
REPORTS = Path("reports")
# Resumable training states: outside every DVC output (DVC deletes outputs before a stage
# runs), git- and dvc-ignored, one file per hash of the stage's inputs.
RESUME = Path(".resume")

# validate
VALIDATION = REPORTS / "validation"
VALIDATION_RESULTS = VALIDATION / "results"
VALIDATION_DOCS = VALIDATION / "docs"  # Great Expectations Data Docs

# pretrain@<r>: DVCLive's per-epoch metrics and curves, the run's timings, the views figure
PRETRAIN = REPORTS / "pretrain"
METRICS = "metrics.json"  # DVCLive's last values (pretrain), the headline metrics (summarize)
RUN = "run.json"  # what differs between runs that give the same checkpoint: timings, machine
CURVES_DIR = Path("plots") / "metrics"  # one <metric>.tsv per logged metric, under pretrain/<r>/
VIEWS = "views.png"

# evaluate@<r> and transfer@<dataset>-<r>: details.json (every run) and evaluate's figures
EVALUATE = REPORTS / "evaluate"
TRANSFER = REPORTS / "transfer"
DETAILS = "details.json"
EMBEDDING = "embedding.png"
CONFUSION = "confusion.png"

# summarize: every replica pooled, and the headline numbers (the one DVC metrics file)
SUMMARY = REPORTS / "summary.json"
HEADLINE_METRICS = REPORTS / METRICS

# figures of the report stage
FIGURES = REPORTS / "figures"
CURVES_FIGURE = FIGURES / "curves.png"
FRACTIONS_FIGURE = FIGURES / "fractions.png"
SAMPLES_FIGURE = FIGURES / "samples.png"

# report
REPORT_MD = REPORTS / "report.md"
REPORT_HTML = REPORTS / "report.html"
PLOTS = REPORTS / "plots"
LINEAR_FRACTIONS_PLOT = PLOTS / "linear_fractions.csv"  # dvc.yaml's "Linear probe" plot
# Where docs/experiments.md suggests `python -m flows.compare --output` writes the experiments
# table: not a DVC output (experiments are not a stage's input).
EXPERIMENTS_TABLE = REPORTS / "experiments.md"


def prepared_root(dataset: str) -> Path:
    return PREPARED / dataset


def validation_result(dataset: str) -> Path:
    return VALIDATION_RESULTS / f"{dataset}.json"


def checkpoint(replica: int) -> Path:
    return MODELS / f"simclr-{replica}.pt"


def pretrain_dir(replica: int) -> Path:
    return PRETRAIN / str(replica)


def evaluate_dir(replica: int) -> Path:
    return EVALUATE / str(replica)


def transfer_dir(dataset: str, replica: int) -> Path:
    return TRANSFER / dataset / str(replica)

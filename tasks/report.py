"""Render reports/report.md from the stages' metrics, validation results and provenance."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.errors import PipelineError
from simclr.io import write_text
from tasks.artifacts import artifact_key, publish
from tasks.paths import REPORTS
from tasks.retries import TRANSIENT

REPORT = REPORTS / "report.md"
METHOD_NAMES = {
    "simclr": "SimCLR",
    "random_init": "random init",
    "raw_pixels": "raw pixels",
}


def _read(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


FAMILY_NAMES = {
    "linear": "Linear probe (logistic regression on frozen h)",
    "knn": "kNN (weighted cosine on frozen h)",
    "finetune": "Fine-tuning (encoder + linear head on the labelled subset)",
}


def _p(p: float) -> str:
    return f"p={p:.2g}" if p >= 1e-4 else "p<1e-4"


def accuracy_table(by_method: dict, significance: dict | None = None, key: str = "mean") -> str:
    """Markdown table: one row per method, one column per label fraction, mean ± std (n); the
    best in each column bold; a baseline's cells carry the p-value of SimCLR vs it."""
    fractions = list(next(iter(by_method.values())).keys())
    best = {f: max(by_method[m][f][key] for m in by_method) for f in fractions}
    head = "| method | " + " | ".join(f"{float(f):.0%} labels" for f in fractions) + " |"
    rule = "|---|" + "---|" * len(fractions)
    rows = []
    order = [m for m in METHOD_NAMES if m in by_method] + [
        m for m in by_method if m not in METHOD_NAMES
    ]
    for method in order:
        by_fraction = by_method[method]
        cells = []
        for f in fractions:
            r = by_fraction[f]
            cell = f"{r[key]:.3f}"
            if key == "mean":
                cell += f" ± {r['std']:.3f} (n={r['n']})"
            if r[key] == best[f]:
                cell = f"**{cell}**"
            test = (significance or {}).get(method, {}).get(f)
            if key == "mean" and test is not None:
                cell += f", {_p(test['p'])}"
            cells.append(cell)
        rows.append(f"| {METHOD_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


def evaluation_section(title: str, details: dict) -> list[str]:
    """The tables of one evaluated dataset (evaluate or a transfer@<dataset>)."""
    protocol = details["protocol"]
    lines = [
        "",
        f"## {title}",
        "",
        f"{protocol['train_images']} training and {protocol['test_images']} test images. "
        "Test top-1 accuracy, mean ± std over label subsets (n seeds; 100% is one run); best "
        "bold. p: two-sided, SimCLR vs that baseline: a paired t-test over the seeds (the "
        "same label subsets), or a paired permutation test on the test predictions where n=1.",
    ]
    significance = details.get("significance", {})
    for family, name in FAMILY_NAMES.items():
        if family not in details:
            continue
        lines += [
            "",
            f"### {name}",
            "",
            f"Protocol: {protocol.get(family, protocol.get('probe', ''))}.",
            "",
            accuracy_table(details[family], significance.get(family)),
        ]
        if family == "linear":
            lines += [
                "",
                "Mean per-class accuracy of the linear probe:",
                "",
                accuracy_table(details[family], key="mean_per_class"),
            ]
    return lines


def render(params: Params, reports: Path = REPORTS) -> str:
    evaluate = _read(reports / "evaluate" / "details.json")
    pretrain = _read(reports / "pretrain" / "metrics.json")
    prov = evaluate["checkpoint"]["provenance"] or {}
    lines = [
        "# SimCLR pipeline report",
        "",
        "## Run",
        "",
        f"- pretraining set: `{params.pretrain.dataset}`, {params.pretrain.epochs} epochs, "
        f"batch {params.pretrain.batch_size}, temperature {params.pretrain.temperature}, "
        f"final loss {pretrain.get('loss', float('nan')):.4f}, "
        f"pretraining wall time {pretrain.get('wall_seconds', float('nan')):.1f} s",
        f"- git commit: `{prov.get('git_commit')}`"
        + (" (uncommitted changes)" if prov.get("git_dirty") else ""),
        f"- device: {prov.get('device')}; python {prov.get('python')}; {prov.get('platform')}",
        "- packages: "
        + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v),
        "",
        "## Data validation",
        "",
        "| dataset | result |",
        "|---|---|",
    ]
    for path in sorted((reports / "validation" / "results").glob("*.json")):
        v = json.loads(path.read_text())
        passed = sum(o["success"] for o in v["expectations"])
        status = "passed" if v["success"] else "FAILED"
        lines.append(f"| {v['dataset']} | {status} ({passed}/{len(v['expectations'])}) |")
    lines += evaluation_section(f"Evaluation on `{evaluate['dataset']}`", evaluate)
    for name in params.transfer.datasets:
        details = _read(reports / "transfer" / name / "details.json")
        lines += evaluation_section(f"Transfer to `{name}`", details)
    return "\n".join(lines) + "\n"


@task(name="render-report", cache_policy=NONE, **TRANSIENT)
def write_report(params: Params) -> Path:
    text = render(params)
    write_text(REPORT, text)
    publish(artifact_key("report"), f"{REPORT}: {len(text.splitlines())} lines", text)
    get_run_logger().info("wrote %s", REPORT)
    return REPORT

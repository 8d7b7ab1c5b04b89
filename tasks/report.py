"""Render reports/report.md from the stages' metrics, validation results and provenance."""

from __future__ import annotations

import json
from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.errors import PipelineError
from simclr.io import write_text
from tasks.paths import REPORTS

REPORT = REPORTS / "report.md"
METHOD_NAMES = {
    "simclr": "SimCLR (frozen h)",
    "random_init": "random-init encoder",
    "raw_pixels": "raw pixels",
}


def _read(path: Path) -> dict:
    if not path.is_file():
        raise PipelineError(f"{path}: missing; run the stage that writes it (dvc repro)")
    return json.loads(path.read_text())


def linear_table(linear: dict) -> str:
    """Markdown table: one row per method, one column per fraction, mean ± std (n); best bold."""
    fractions = list(next(iter(linear.values())).keys())
    best = {f: max(linear[m][f]["mean"] for m in linear) for f in fractions}
    head = "| method | " + " | ".join(f"{float(f):.0%} labels" for f in fractions) + " |"
    rule = "|---|" + "---|" * len(fractions)
    rows = []
    for method, by_fraction in linear.items():
        cells = []
        for f in fractions:
            r = by_fraction[f]
            cell = f"{r['mean']:.4f} ± {r['std']:.4f} (n={r['n']})"
            cells.append(f"**{cell}**" if r["mean"] == best[f] else cell)
        rows.append(f"| {METHOD_NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join([head, rule, *rows])


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
    protocol = evaluate["protocol"]["probe"]
    lines += [
        "",
        f"## Linear evaluation on `{evaluate['dataset']}`",
        "",
        f"Protocol: {protocol}; test top-1 accuracy, mean ± std over label subsets (n seeds). "
        f"{evaluate['protocol']['train_images']} training and "
        f"{evaluate['protocol']['test_images']} test images.",
        "",
        linear_table(evaluate["linear"]),
    ]
    for name in params.transfer.datasets:
        t = _read(reports / "transfer" / name / "details.json")
        lines += [
            "",
            f"## Transfer to `{name}`",
            "",
            f"{t['protocol']['train_images']} training and {t['protocol']['test_images']} "
            "test images; same protocol.",
            "",
            linear_table(t["linear"]),
        ]
    return "\n".join(lines) + "\n"


@task(name="render-report", cache_policy=NONE)
def write_report(params: Params) -> Path:
    write_text(REPORT, render(params))
    get_run_logger().info("wrote %s", REPORT)
    return REPORT

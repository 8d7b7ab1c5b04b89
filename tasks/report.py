"""Render reports/report.md and the self-contained reports/report.html (figures inlined) from
the stages' metrics, validation results, prepared data and provenance."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import DatasetConfig, Params, fraction_label, to_dict
from simclr.data.prepared import load_prepared
from simclr.errors import PipelineError
from simclr.io import write_text
from tasks.artifacts import artifact_key, publish
from tasks.experiments import dvc_exp_show, experiments_table, markdown_table
from tasks.paths import PRETRAIN_RUN, REPORTS, prepared_root
from tasks.report_figures import (
    PROTOCOL_LABELS,
    accuracy_vs_fraction,
    pretraining_curves,
    sample_grid,
)
from tasks.retries import TRANSIENT

REPORT = REPORTS / "report.md"
REPORT_HTML = REPORTS / "report.html"
PLOTS = REPORTS / "plots"
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
    head = "| method | " + " | ".join(f"{fraction_label(f)} labels" for f in fractions) + " |"
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
        "same label subsets), or the exact McNemar test on the test predictions where n=1.",
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


def _differs_from_defaults(params: Params) -> list[str]:
    """`key: value` for every param whose value is not the built-in default (each dataset is
    compared with a default entry of its own source)."""
    from tasks.experiments import flatten  # one flattening of params everywhere

    # Built without validation: the default pretrain.dataset need not be one of these.
    sources = {
        n: DatasetConfig.model_construct(source=d.source) for n, d in params.datasets.items()
    }
    ours = flatten(to_dict(params))
    defaults = flatten(to_dict(Params.model_construct(datasets=sources)))
    return [f"`{k}`: {v}" for k, v in ours.items() if defaults.get(k, object()) != v]


def data_section(params: Params, reports: Path) -> list[str]:
    lines = [
        "## Data",
        "",
        "| dataset | validation | classes | train images | test images | per class (train) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name in params.datasets:
        v = _read(reports / "validation" / "results" / f"{name}.json")
        passed = sum(o["success"] for o in v["expectations"])
        status = "passed" if v["success"] else "**FAILED**"
        data = load_prepared(prepared_root(name))
        counts = np.bincount(data.train.labels, minlength=len(data.class_names))
        lines.append(
            f"| {name} | {status} ({passed}/{len(v['expectations'])} checks) | "
            f"{len(data.class_names)} | {len(data.train.labels)} | {len(data.test.labels)} | "
            f"{counts.min()}–{counts.max()} |"
        )
    lines += ["", "![Training images](figures/samples.png)", ""]
    return lines


def transfer_table(results: dict[str, dict]) -> list[str]:
    """Datasets x (protocol, method) at the largest label fraction, protocols named."""
    columns = [
        (family, method)
        for family in FAMILY_NAMES
        for method in METHOD_NAMES
        if any(method in d.get(family, {}) for d in results.values())
    ]
    head = "| dataset | labels | " + " | ".join(
        f"{PROTOCOL_LABELS[f]}: {METHOD_NAMES[m]}" for f, m in columns
    )
    lines = [head + " |", "|---|---|" + "---|" * len(columns)]
    for dataset, details in results.items():
        fraction = max(details["linear"]["simclr"], key=float)
        cells = []
        for family, method in columns:
            r = details.get(family, {}).get(method, {}).get(fraction)
            cells.append("" if r is None else f"{r['mean']:.3f}")
        role = "pretraining set" if dataset == next(iter(results)) else "transfer"
        lines.append(
            f"| {dataset} ({role}) | {fraction_label(fraction)} | " + " | ".join(cells) + " |"
        )
    return lines


def experiments_section() -> list[str]:
    """All DVC experiments on HEAD, as `python -m flows.compare` prints them: a snapshot of the
    repository's experiments when this report was rendered."""
    try:
        rows = experiments_table(dvc_exp_show(Path(".")))
    except (PipelineError, OSError, ValueError) as e:
        return ["## Experiments", "", f"Not available here ({e}); run `python -m flows.compare`."]
    return [
        "## Experiments",
        "",
        "HEAD and its DVC experiments (`python -m flows.compare`); params that differ between "
        "them, headline metrics, the best of each metric column in bold.",
        "",
        markdown_table(rows),
    ]


def render(params: Params, reports: Path = REPORTS) -> str:
    """reports/report.md's text; writes the figures it links under reports/figures/."""
    evaluate = _read(reports / "evaluate" / "details.json")
    pretrain = _read(reports / "pretrain" / "metrics.json")
    transfers = {
        n: _read(reports / "transfer" / n / "details.json") for n in params.transfer.datasets
    }
    everything = {params.pretrain.dataset: evaluate, **transfers}
    prov = _read(reports / PRETRAIN_RUN.relative_to(REPORTS))["provenance"]
    figures = reports / "figures"
    pretraining_curves(reports / "pretrain" / "plots" / "metrics", figures / "curves.png")
    accuracy_vs_fraction(everything, figures / "fractions.png")
    samples = {}
    for name in params.datasets:
        data = load_prepared(prepared_root(name))
        samples[name] = (data.train.images, data.train.labels, list(data.class_names))
    sample_grid(samples, figures / "samples.png")
    evaluation_seconds = sum(sum(d.get("seconds", {}).values()) for d in everything.values())
    changed = _differs_from_defaults(params)
    lines = [
        "# SimCLR pipeline report",
        "",
        "## Run",
        "",
        f"- pretraining set: `{params.pretrain.dataset}`, {params.pretrain.epochs} epochs, "
        f"batch {params.pretrain.batch_size}, temperature {params.pretrain.temperature}, "
        f"final loss {pretrain.get('loss', float('nan')):.4f}",
        f"- wall time: pretraining {pretrain.get('wall_seconds', float('nan')):.1f} s, "
        f"evaluation and transfer {evaluation_seconds:.1f} s (inside the protocols)",
        f"- git commit of the pretraining: `{prov.get('git_commit')}`"
        + (" (uncommitted changes)" if prov.get("git_dirty") else ""),
        f"- device: {prov.get('device')}; python {prov.get('python')}; {prov.get('platform')}",
        "- packages: "
        + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v),
        "- datasets: "
        + ", ".join(f"`{n}` ({d.source})" for n, d in params.datasets.items())
        + f"; pretraining on `{params.pretrain.dataset}`, transfer to "
        + ", ".join(f"`{n}`" for n in params.transfer.datasets),
        "- params that differ from the built-in defaults: "
        + ("; ".join(changed) if changed else "none"),
        "",
        *data_section(params, reports),
        "## Augmentation",
        "",
        "Two SimCLR views of each of eight pretraining images, as the pretrain stage draws them.",
        "",
        "![View pairs](figures/views.png)",
        "",
        "## Pretraining",
        "",
        "![Pretraining curves](figures/curves.png)",
        "",
        "## Accuracy against labelled fraction",
        "",
        "Colour: method; line style: protocol (solid linear probe, dotted kNN, dashed "
        "fine-tune); bars: ± std over label subsets.",
        "",
        "![Accuracy against the labelled fraction](figures/fractions.png)",
        "",
        "## Transfer",
        "",
        "Test top-1 at the largest label fraction; protocols as below (linear: logistic "
        "regression on frozen h with the L2 strength chosen on a validation split; kNN: weighted "
        "cosine on frozen h; fine-tune: encoder + linear head trained on the labels).",
        "",
        *transfer_table(everything),
        "",
        f"## Embedding and errors on `{params.pretrain.dataset}`",
        "",
        "![t-SNE of the test features](figures/embedding.png)",
        "",
        "![Confusion matrix of the linear probe](figures/confusion.png)",
    ]
    lines += evaluation_section(f"Evaluation on `{evaluate['dataset']}`", evaluate)
    for name, details in transfers.items():
        lines += evaluation_section(f"Transfer to `{name}`", details)
    lines += ["", *experiments_section()]
    return "\n".join(lines) + "\n"


IMAGE_CHECK = """<script>
// Marks the page once loaded: how many images decoded (used by the headless-browser test).
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt);
  document.body.dataset.images = `${imgs.length - bad.length}/${imgs.length}`;
  document.body.dataset.broken = bad.join("|");
});
</script>"""

STYLE = """<style>
body { font-family: system-ui, sans-serif; max-width: 1100px; margin: 2em auto; padding: 0 1em;
       line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.85em; display: block;
        overflow-x: auto; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; text-align: left; }
th { background: #f3f3f3; }
img { max-width: 100%; border: 1px solid #eee; }
code { background: #f6f6f6; padding: 0 0.2em; }
</style>"""


def to_html(markdown_text: str, root: Path) -> str:
    """A self-contained HTML page: the Markdown rendered, every figure inlined as a data URI
    (no external reference of any kind)."""
    import base64
    import html
    import re

    import markdown

    # Escaped first: text from params or experiment names must not become markup in the page.
    body = markdown.markdown(html.escape(markdown_text, quote=False), extensions=["tables"])

    def inline(match: re.Match) -> str:
        path = root / match.group(1)
        if not path.is_file():
            raise PipelineError(f"{path}: figure missing; re-run the stage that writes it")
        data = base64.b64encode(path.read_bytes()).decode()
        return f'src="data:image/png;base64,{data}"'

    body = re.sub(r'src="([^":]+\.png)"', inline, body)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        "<title>SimCLR pipeline report</title>"
        f"{STYLE}</head><body>\n{body}\n{IMAGE_CHECK}</body></html>\n"
    )


def linear_fractions_csv(details: dict) -> str:
    """The pretraining set's linear probe by labelled fraction, one column per method: the data
    of dvc.yaml's "Linear probe against labelled fraction" plot."""
    linear = details["linear"]
    methods = [m for m in METHOD_NAMES if m in linear]
    lines = ["labels_percent," + ",".join(methods)]
    for fraction in sorted(linear["simclr"], key=float):
        values = ",".join(f"{linear[m][fraction]['mean']:.6f}" for m in methods)
        lines.append(f"{float(fraction) * 100:g},{values}")
    return "\n".join(lines) + "\n"


@task(name="render-report", cache_policy=NONE, **TRANSIENT)
def write_report(params: Params) -> Path:
    write_text(
        PLOTS / "linear_fractions.csv",
        linear_fractions_csv(_read(REPORTS / "evaluate" / "details.json")),
    )
    text = render(params)
    write_text(REPORT, text)
    write_text(REPORT_HTML, to_html(text, REPORTS))
    publish(artifact_key("report"), f"{REPORT}: {len(text.splitlines())} lines", text)
    get_run_logger().info("wrote %s and %s", REPORT, REPORT_HTML)
    return REPORT

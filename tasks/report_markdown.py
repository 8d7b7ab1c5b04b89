"""reports/report.md's text, rendered from the report's inputs (tasks/report_inputs.py): a pure
function of them, reading and writing nothing."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from simclr.significance import ALPHA, CANNOT_TELL, false_discovery, verdict
from tasks.dotted import changed_params
from tasks.labels import (
    METHOD_LABELS,
    PROTOCOL_LABELS,
    PROTOCOL_TITLES,
    fraction_label,
    method_label,
    methods_in_order,
)
from tasks.paths import (
    CURVES_FIGURE,
    EXPERIMENTS_TABLE,
    FRACTIONS_FIGURE,
    REPORT_MD,
    SAMPLES_FIGURE,
)
from tasks.report_inputs import ReportInputs, figure_paths

FEW_REPLICAS = (
    "with 2 pretraining replicas the test over replicas has 1 degree of freedom: its intervals "
    'are wide and it has little power, so a gain that won in every run can still read "no"; 3 '
    "or more replicas (params.yaml `replicas`) make it informative"
)


def literal(value: object) -> str:
    """`value` (anything a user controls: a param, a name) as a Markdown code span, shown
    exactly as it is: no link, image, emphasis or HTML in it becomes markup. The fence is a run
    of backticks longer than any inside; a line break shows as \\n, so the value stays on its
    line (and in its table cell)."""
    text = str(value).replace("\r", "\\r").replace("\n", "\\n")
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def figure(alt: str, path: Path) -> str:
    """A Markdown image of a figure, linked relative to report.md."""
    return f"![{alt}]({path.relative_to(REPORT_MD.parent).as_posix()})"


def _pvalue(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else "<1e-4"


def _p(p: float) -> str:
    value = _pvalue(p)
    return f"p{value}" if value.startswith("<") else f"p={value}"


def _cell(r: dict, key: str, best: float, test: dict | None) -> str:
    cell = f"{r[key]:.3f}"
    if key == "mean":
        cell += f" ± {r['std']:.3f}"
    if r[key] == best:
        cell = f"**{cell}**"
    if key == "mean" and test is not None:
        cell += f", {_p(test['p'])}"
    return cell


def accuracy_table(by_method: dict, significance: dict | None = None, key: str = "mean") -> str:
    """Markdown table: one row per method, one column per label fraction, mean ± std (n); the
    best in each column bold; a baseline's cells carry the p-value of SimCLR vs it."""
    fractions = list(next(iter(by_method.values())).keys())
    best = {f: max(by_method[m][f][key] for m in by_method) for f in fractions}
    head = "| method | " + " | ".join(f"{fraction_label(f)} labels" for f in fractions) + " |"
    rows = [head, "|---|" + "---|" * len(fractions)]
    for method in methods_in_order(by_method):
        tests = (significance or {}).get(method, {})
        cells = [_cell(by_method[method][f], key, best[f], tests.get(f)) for f in fractions]
        rows.append(f"| {method_label(method)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def _design(details: dict) -> str:
    """How many runs stand behind each cell: replicas x label subsets at each fraction."""
    cells = details["linear"]["simclr"]
    return ", ".join(
        f"{fraction_label(f)}: {c['replicas']} × {c['subsets']}" for f, c in cells.items()
    )


def _test_words(details: dict) -> str:
    cell = next(iter(details["linear"]["simclr"].values()))
    if cell["replicas"] >= 2:
        caveat = f" ({FEW_REPLICAS})" if cell["replicas"] == 2 else ""
        return (
            "a t-test over the pretraining replicas of each replica's mean difference over its "
            "label subsets (SimCLR and baseline on the same subsets), so p includes the "
            f"pretraining's variation{caveat}"
        )
    return (
        "one replica only, so p covers the label subsets, not the pretraining: a paired t-test "
        "over the subsets, or the exact McNemar test on the test predictions where there is one"
    )


def evaluation_section(title: str, details: dict) -> list[str]:
    """The tables of one evaluated dataset (evaluate or a transfer@<dataset>), over replicas."""
    about = details["protocol"]
    lines = [
        "",
        f"## {title}",
        "",
        f"{about['train_images']} training and {about['test_images']} test images. "
        "Test top-1 accuracy, mean ± std over every run (pretraining replicas × label subsets; "
        f"{_design(details)}); best bold. p: two-sided, SimCLR vs that baseline: "
        f"{_test_words(details)}.",
    ]
    significance = details.get("significance", {})
    for protocol, name in PROTOCOL_TITLES.items():
        if protocol not in details:
            continue
        lines += [
            "",
            f"### {name}",
            "",
            f"Protocol: {about.get(protocol, about.get('probe', ''))}.",
            "",
            accuracy_table(details[protocol], significance.get(protocol)),
        ]
        if protocol == "linear":
            lines += [
                "",
                "Mean per-class accuracy of the linear probe:",
                "",
                accuracy_table(details[protocol], key="mean_per_class"),
            ]
    return lines


def transfer_table(results: dict[str, dict]) -> list[str]:
    """Datasets x (protocol, method) at the largest label fraction, protocols named."""
    columns = [
        (protocol, method)
        for protocol in PROTOCOL_LABELS
        for method in METHOD_LABELS
        if any(method in d.get(protocol, {}) for d in results.values())
    ]
    head = "| dataset | labels | " + " | ".join(
        f"{PROTOCOL_LABELS[p]}: {method_label(m)}" for p, m in columns
    )
    lines = [head + " |", "|---|---|" + "---|" * len(columns)]
    for dataset, details in results.items():
        fraction = max(details["linear"]["simclr"], key=float)
        cells = []
        for protocol, method in columns:
            r = details.get(protocol, {}).get(method, {}).get(fraction)
            cells.append("" if r is None else f"{r['mean']:.3f}")
        role = "pretraining set" if dataset == next(iter(results)) else "transfer"
        lines.append(
            f"| {dataset} ({role}) | {fraction_label(fraction)} | " + " | ".join(cells) + " |"
        )
    return lines


def _over_replicas(cell: dict | None, digits: int = 4) -> str:
    if cell is None:
        return "n/a"
    return f"{cell['mean']:.{digits}f} ± {cell['std']:.{digits}f}"


def _transfer_words(datasets: tuple[str, ...]) -> str:
    if not datasets:
        return "no transfer sets (params.yaml `transfer.datasets` is empty)"
    return "transfer to " + ", ".join(f"`{n}`" for n in datasets)


def run_section(inputs: ReportInputs) -> list[str]:
    """What ran: pretraining, wall times, provenance, datasets, params that are not defaults."""
    params, pretrain = inputs.params, inputs.summary["pretrain"]
    prov = inputs.runs[inputs.first]["provenance"]
    seconds = sum(sum(d.get("seconds", {}).values()) for d in inputs.evaluations.values())
    walls = sum(r["wall_seconds"] for r in inputs.runs.values())
    changed = [f"{literal(k)}: {literal(v)}" for k, v in changed_params(params).items()]
    replicas = ", ".join(str(r) for r in params.replicas)
    return [
        "## Run",
        "",
        f"- pretraining set: `{params.pretrain.dataset}`, {params.pretrain.epochs} epochs, "
        f"batch {params.pretrain.batch_size}, temperature {params.pretrain.temperature}",
        f"- {len(params.replicas)} pretraining replicas ({replicas}; replica r pretrains with "
        f"seed {params.seed} + r): final loss {_over_replicas(pretrain.get('loss'))}, kNN "
        f"monitor {_over_replicas(pretrain.get('knn_accuracy'))} (mean ± std over replicas)",
        f"- wall time: pretraining {walls:.1f} s (all replicas), evaluation and transfer "
        f"{seconds:.1f} s (inside the protocols, all replicas)",
        f"- git commit of the pretraining: `{prov.get('git_commit')}`"
        + (" (uncommitted changes)" if prov.get("git_dirty") else ""),
        f"- device: {prov.get('device')}; python {prov.get('python')}; {prov.get('platform')}",
        "- packages: "
        + ", ".join(f"{k} {v}" for k, v in (prov.get("packages") or {}).items() if v),
        "- datasets: "
        + ", ".join(f"`{n}` ({d.source})" for n, d in params.datasets.items())
        + f"; pretraining on `{params.pretrain.dataset}`, "
        + _transfer_words(params.transfer.datasets),
        "- departures from the paper's recipe (the library's defaults, simclr/config.py): "
        + ("; ".join(changed) if changed else "none"),
        "",
    ]


def data_section(inputs: ReportInputs) -> list[str]:
    lines = [
        "## Data",
        "",
        "| dataset | validation | classes | train images | test images | per class (train) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, data in inputs.datasets.items():
        v = inputs.validation[name]
        passed = sum(o["success"] for o in v["expectations"])
        status = "passed" if v["success"] else "**FAILED**"
        counts = np.bincount(data.train.labels, minlength=len(data.class_names))
        lines.append(
            f"| {name} | {status} ({passed}/{len(v['expectations'])} checks) | "
            f"{len(data.class_names)} | {len(data.train.labels)} | {len(data.test.labels)} | "
            f"{counts.min()}–{counts.max()} |"
        )
    return [*lines, "", figure("Training images", SAMPLES_FIGURE), ""]


def figures_section(inputs: ReportInputs) -> list[str]:
    """Augmentation, pretraining curves and accuracy against the labelled fraction."""
    return [
        "## Augmentation",
        "",
        "Two SimCLR views of each of eight pretraining images, as the pretrain stage of replica "
        f"{inputs.first} draws them.",
        "",
        figure("View pairs", figure_paths(inputs.first)["views"]),
        "",
        "## Pretraining",
        "",
        "One line per pretraining replica.",
        "",
        figure("Pretraining curves", CURVES_FIGURE),
        "",
        "## Accuracy against labelled fraction",
        "",
        "Colour: method; line style: protocol (solid linear probe, dotted kNN, dashed "
        "fine-tune); bars: ± std over every run (replicas × label subsets).",
        "",
        figure("Accuracy against the labelled fraction", FRACTIONS_FIGURE),
        "",
    ]


def transfer_section(inputs: ReportInputs) -> list[str]:
    dataset = inputs.params.pretrain.dataset
    figures = figure_paths(inputs.first)
    return [
        "## Transfer",
        "",
        "Test top-1 at the largest label fraction; protocols as below (linear: logistic "
        "regression on frozen h with the L2 strength chosen on a validation split; kNN: weighted "
        "cosine on frozen h; fine-tune: encoder + linear head trained on the labels).",
        "",
        *transfer_table(inputs.evaluations),
        "",
        f"## Embedding and errors on `{dataset}`",
        "",
        f"Replica {inputs.first}'s encoder.",
        "",
        figure("t-SNE of the test features", figures["embedding"]),
        "",
        figure("Confusion matrix of the linear probe", figures["confusion"]),
    ]


def _best_baseline(details: dict, protocol: str, fraction: str) -> str:
    cells = details[protocol]
    return max((m for m in cells if m != "simclr"), key=lambda m: cells[m][fraction]["mean"])


def _ci(test: dict) -> str:
    ci = test.get("ci")
    return f"[{ci[0]:+.3f}, {ci[1]:+.3f}]" if ci else "n/a"


def _baseline_rows(inputs: ReportInputs) -> list[tuple]:
    """(dataset, protocol, fraction, SimCLR's cell, the best baseline, its cell, the test) of
    every cell of the table, in the table's order."""
    rows = []
    for dataset, details in inputs.evaluations.items():
        for protocol in PROTOCOL_LABELS:
            if protocol not in details:
                continue
            for fraction, ours in details[protocol]["simclr"].items():
                base = _best_baseline(details, protocol, fraction)
                test = details["significance"][protocol][base][fraction]
                theirs = details[protocol][base][fraction]
                rows.append((dataset, protocol, fraction, ours, base, theirs, test))
    return rows


def baselines_section(inputs: ReportInputs) -> list[str]:
    """SimCLR against the best baseline of every dataset, protocol and fraction: the difference,
    its 95% confidence interval over replicas and the p-value; beyond noise by the rule of
    `simclr compare`: the Benjamini-Hochberg q over the table's cells below ALPHA."""
    rows = _baseline_rows(inputs)
    ps = [test["p"] for *_, test in rows]
    tested = [i for i, p in enumerate(ps) if p is not None and np.isfinite(p)]
    qs = dict(zip(tested, false_discovery([ps[i] for i in tested]), strict=True))
    few = len(inputs.params.replicas) == 2
    lines = [
        "## SimCLR against the baselines",
        "",
        "Each cell: mean ± std over every run (replicas × label subsets). diff: SimCLR minus "
        "the best baseline, with its 95% confidence interval and two-sided p from the test over "
        f"pretraining replicas (see each dataset's section); beyond noise: yes where the "
        f'Benjamini-Hochberg q over the {len(rows)} cells is below {ALPHA}, "p < {ALPHA} only" '
        "where p alone is, as `simclr compare` decides."
        + (f" Note: {FEW_REPLICAS}." if few else ""),
        "",
        "| dataset | protocol | labels | SimCLR | best baseline | diff [95% CI] | p "
        "| beyond noise |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for i, (dataset, protocol, fraction, ours, base, theirs, test) in enumerate(rows):
        mark = verdict(test["p"], qs[i]) if i in qs else CANNOT_TELL
        lines.append(
            f"| {dataset} | {PROTOCOL_LABELS[protocol]} | {fraction_label(fraction)} | "
            f"{ours['mean']:.3f} ± {ours['std']:.3f} | {method_label(base)} "
            f"{theirs['mean']:.3f} ± {theirs['std']:.3f} | {test['diff']:+.3f} "
            f"{_ci(test)} | {_pvalue(test['p'])} | {mark} |"
        )
    return [*lines, ""]


def experiments_section() -> list[str]:
    """Where the comparison of experiments is: not in this report, whose inputs are this run's
    stage outputs only (DVC's experiment refs are no stage's dependency)."""
    return [
        "## Experiments",
        "",
        "This report shows the workspace's run. To compare it with the repository's DVC "
        "experiments (the params that differ between them and their headline metrics, the best "
        "of each metric column in bold), run `python -m flows.compare`; "
        f"`python -m flows.compare --output {EXPERIMENTS_TABLE.as_posix()}` (or `.html`, "
        "`.csv`) writes the table to a file.",
    ]


def render(inputs: ReportInputs) -> str:
    """reports/report.md's text."""
    lines = [
        "# SimCLR pipeline report",
        "",
        *run_section(inputs),
        *data_section(inputs),
        *figures_section(inputs),
        *baselines_section(inputs),
        *transfer_section(inputs),
    ]
    for name, details in inputs.evaluations.items():
        first = details["role"] == "pretraining set"
        lines += evaluation_section(
            f"{'Evaluation on' if first else 'Transfer to'} `{name}`", details
        )
    lines += ["", *experiments_section()]
    return "\n".join(lines) + "\n"

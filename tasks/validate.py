"""Great Expectations on each prepared dataset: its manifest (one row per image or undecodable
file) and its class counts. Results go to reports/validation/results/<ds>.json, GX Data Docs to
reports/validation/docs/ (tasks/paths.py), and a markdown summary to Prefect."""

from __future__ import annotations

import html
import math
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import DataConfig, DatasetConfig, Params, ValidateConfig
from simclr.data.prepared import load_manifest, load_prepared, load_skipped
from simclr.io import atomic_path, write_json
from tasks.artifacts import artifact_key, publish
from tasks.paths import VALIDATION_DOCS, prepared_root, validation_result
from tasks.retries import TRANSIENT

EXAMPLES = 20  # failing rows kept per expectation (GX's partial_unexpected_count)
MIN_CLASSES = 2
DOCS_SITE = "local_site"  # the one Data Docs site of a validate run


def _check(name: str, expectation):
    """Name the check for people: GX's type names the mechanism, not the data problem."""
    expectation.meta = {"check": name}
    return expectation


def _not_null(e, decoded) -> list:
    """Every identifying value present; every measured value present where the file decoded."""
    return [
        _check(f"no missing {c}", e.ExpectColumnValuesToNotBeNull(column=c))
        for c in ("split", "index", "label")
    ] + [
        _check(f"no missing {c}", e.ExpectColumnValuesToNotBeNull(column=c, row_condition=decoded))
        for c in ("height", "width", "channels", "pixel_mean", "pixel_std", "sha256")
    ]


def _shape(e, size: int, channels: list[int]) -> list:
    return [
        _check(
            "height as configured", e.ExpectColumnValuesToBeInSet(column="height", value_set=[size])
        ),
        _check(
            "width as configured", e.ExpectColumnValuesToBeInSet(column="width", value_set=[size])
        ),
        _check(
            "channels as configured",
            e.ExpectColumnValuesToBeInSet(column="channels", value_set=channels),
        ),
    ]


def _content(e, v: ValidateConfig, decoded, test) -> list:
    """No near-blank image, no duplicate within a split, no test image also trained on."""
    return [
        _check(
            "no near-blank images",
            e.ExpectColumnValuesToBeBetween(column="pixel_std", min_value=v.min_pixel_std),
        ),
        _check(
            "no duplicate images within a split",
            e.ExpectCompoundColumnsToBeUnique(
                column_list=["split", "sha256"], row_condition=decoded
            ),
        ),
        _check(
            "no test image also in a training split",
            e.ExpectColumnValuesToBeInSet(
                column="also_in_training", value_set=[False], row_condition=test
            ),
        ),
    ]


def manifest_expectations(
    v: ValidateConfig, opts: DataConfig, cfg: DatasetConfig, n_classes: int
) -> list:
    import great_expectations as gx
    from great_expectations.expectations.row_conditions import Column

    e = gx.expectations
    # Without `channels`, a source keeps its own: image folders are read as RGB, others either.
    native = [3] if cfg.source == "imagefolder" else [1, 3]
    # Rows that some checks are about: files that decoded (they have measurements), images
    # with a label, test images.
    decoded = Column("error").is_null()
    labelled = Column("split") != "unlabeled"
    test = Column("split") == "test"
    return [
        _check(
            "row count in range",
            e.ExpectTableRowCountToBeBetween(min_value=v.min_rows, max_value=v.max_rows),
        ),
        _check("every file decodable", e.ExpectColumnValuesToBeNull(column="error")),
        *_not_null(e, decoded),
        _check(
            "split is train, test or unlabeled",
            e.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "test", "unlabeled"]),
        ),
        _check(
            "labels in the class set",
            e.ExpectColumnValuesToBeInSet(
                column="label", value_set=list(range(n_classes)), row_condition=labelled
            ),
        ),
        *_shape(e, opts.image_size, [opts.channels] if opts.channels else native),
        *_content(e, v, decoded, test),
    ]


def class_count_expectations(v: ValidateConfig) -> list:
    import great_expectations as gx

    e = gx.expectations
    return [
        # One class would pass every other check, and every classifier would score 1.0 on it.
        _check(
            f"at least {MIN_CLASSES} classes",
            e.ExpectColumnUniqueValueCountToBeBetween(column="label", min_value=MIN_CLASSES),
        ),
        _check(
            f"every class has at least {v.min_per_class} images in each split",
            e.ExpectColumnValuesToBeBetween(column="count", min_value=v.min_per_class),
        ),
        _check(
            f"largest class at most {v.max_imbalance:g}x the smallest in each split",
            e.ExpectColumnValuesToBeBetween(column="times_smallest", max_value=v.max_imbalance),
        ),
    ]


def manifest_table(manifest: pd.DataFrame) -> pd.DataFrame:
    """The manifest plus what the expectations read: for each test image, whether its pixels
    also occur in a training split (train or unlabeled)."""
    training = set(manifest.loc[manifest["split"] != "test", "sha256"].dropna())
    return manifest.assign(
        also_in_training=(manifest["split"] == "test") & manifest["sha256"].isin(training),
    )


def class_counts(manifest: pd.DataFrame, class_names: list[str]) -> pd.DataFrame:
    """Images per class in each labelled split, zero counts included; `times_smallest` is the
    class's count over the split's smallest class count."""
    rows = []
    decoded = manifest[manifest["error"].isna()]
    for split in ("train", "test"):
        counts = decoded.loc[decoded["split"] == split, "label"].value_counts()
        per_class = [int(counts.get(c, 0)) for c in range(len(class_names))]
        smallest = min(per_class)
        for c, n in enumerate(per_class):
            ratio = n / smallest if smallest else float("inf")
            rows.append(
                {
                    "split": split,
                    "label": c,
                    "class": class_names[c],
                    "count": n,
                    "times_smallest": ratio,
                }
            )
    return pd.DataFrame(rows)


@dataclass
class Suites:
    """One ephemeral GX context per validate run: every dataset's Data Docs land in one site."""

    context: object
    docs: Path

    @classmethod
    def create(cls) -> Suites:
        import great_expectations as gx
        from great_expectations.data_context.types.base import (
            DataContextConfig,
            InMemoryStoreBackendDefaults,
            ProgressBarsConfig,
        )

        config = DataContextConfig(
            store_backend_defaults=InMemoryStoreBackendDefaults(),  # no Data Docs site of its own
            progress_bars=ProgressBarsConfig(globally=False),
        )
        context = gx.get_context(mode="ephemeral", project_config=config)
        # Built in a fresh temporary directory, then published in one rename (`publish`).
        docs = Path(tempfile.mkdtemp(prefix="gx-docs-"))
        context.add_data_docs_site(
            site_name=DOCS_SITE,
            site_config={
                "class_name": "SiteBuilder",
                "show_how_to_buttons": True,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(docs),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
        return cls(context, docs)

    def run(self, name: str, table: pd.DataFrame, expectations: list) -> list[dict]:
        """Validate `table` (a data asset `name`); each expectation's outcome with example rows."""
        import great_expectations as gx

        ctx = self.context
        asset = ctx.data_sources.add_or_update_pandas("prepared").add_dataframe_asset(name)
        batch = asset.add_batch_definition_whole_dataframe("all")
        suite = ctx.suites.add(gx.ExpectationSuite(name=name))
        for expectation in expectations:
            suite.add_expectation(expectation)
        definition = ctx.validation_definitions.add(
            gx.ValidationDefinition(name=name, data=batch, suite=suite)
        )
        checkpoint = ctx.checkpoints.add(
            gx.Checkpoint(
                name=name,
                validation_definitions=[definition],
                actions=[gx.checkpoint.UpdateDataDocsAction(name="data-docs")],
                result_format={
                    "result_format": "SUMMARY",
                    "partial_unexpected_count": EXAMPLES,
                    "unexpected_index_column_names": ["row"],
                },
            )
        )
        frame = table.reset_index(drop=True).assign(row=range(len(table)))
        shown = _escaped(frame)  # GX renders values into Data Docs as they are
        (result,) = checkpoint.run(batch_parameters={"dataframe": shown}).run_results.values()
        return [_outcome(r, frame) for r in result.results]

    def publish(self, target: Path) -> None:
        """Move the Data Docs site to `target` in one rename."""
        with atomic_path(target, tree=True) as tmp:
            shutil.copytree(self.docs, tmp)
        self.discard()

    def discard(self) -> None:
        """Remove the site's temporary build directory."""
        shutil.rmtree(self.docs, ignore_errors=True)


def _outcome(r, frame: pd.DataFrame) -> dict:
    config = r.expectation_config
    kwargs = {k: v for k, v in config.kwargs.items() if k != "batch_id"}
    rows = [int(u["row"]) for u in r.result.get("partial_unexpected_index_list") or []]
    examples = frame.iloc[sorted(set(rows))].drop(columns=["row"], errors="ignore")
    keep = [
        c
        for c in ("split", "index", "label", "class", "count", "source", "error", "sha256")
        if c in examples
    ]
    return {
        "check": config.meta.get("check", config.type),
        "expectation": config.type,
        "kwargs": _plain(kwargs),
        "success": bool(r.success),
        "observed_value": _plain(r.result.get("observed_value")),
        "unexpected_count": int(r.result.get("unexpected_count") or 0),
        "examples": _plain(examples[keep].head(EXAMPLES).to_dict("records")),
    }


def _escaped(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with every text value HTML-escaped. GX puts the values it reports (a file's
    path and Pillow's message about it, a class name) into the Data Docs pages unescaped, so a
    file named `x<img src=x onerror=...>.jpg` would run its script there. Escaping the text
    changes no check: the checks of text columns compare it with null or with itself (split,
    sha256); the JSON results take their examples from the unescaped frame."""
    text = [c for c in frame.columns if pd.api.types.is_string_dtype(frame[c].dtype)]
    return frame.assign(
        **{c: frame[c].map(lambda v: html.escape(v) if isinstance(v, str) else v) for c in text}
    )


def _plain(x):
    """GX results as strict JSON data: numpy scalars as Python numbers, NaN and infinities
    (e.g. `times_smallest` of a missing class) as null, anything else as text."""
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_plain(v) for v in x]
    if hasattr(x, "item") and not isinstance(x, str):  # numpy scalar
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if x is None or isinstance(x, str | int | float | bool):
        return x
    return None if pd.isna(x) else str(x)


def _example(row: dict) -> str:
    if row.get("source"):
        return str(row["source"])
    if "count" in row:
        return f"{row['split']}/{row['class']}: {row['count']} images"
    return f"{row.get('split')}[{row.get('index')}] label {row.get('label')}"


def summary_line(report: dict) -> str:
    failed = [o for o in report["expectations"] if not o["success"]]
    if not failed:
        return f"{report['dataset']}: all {len(report['expectations'])} checks passed"
    parts = []
    for o in failed:
        examples = ", ".join(_example(r) for r in o["examples"][:3])
        if examples:
            parts.append(f"{o['check']}: failed for {o['unexpected_count']} rows, e.g. {examples}")
        else:
            parts.append(f"{o['check']}: failed, observed {o['observed_value']}")
    return f"{report['dataset']}: " + "; ".join(parts)


def summary_markdown(report: dict) -> str:
    status = "passed" if report["success"] else "**FAILED**"
    lines = [
        f"# Validation of `{report['dataset']}`: {status}",
        "",
        f"{report['rows']} manifest rows. Full result: `{validation_result(report['dataset'])}`; "
        f"Data Docs: `{VALIDATION_DOCS / 'index.html'}`.",
        "",
        "| check | result | failing rows | examples |",
        "| --- | --- | ---: | --- |",
    ]
    for o in report["expectations"]:
        examples = "<br>".join(_example(r) for r in o["examples"][:5])
        lines.append(
            f"| {o['check']} | {'pass' if o['success'] else 'FAIL'} | {o['unexpected_count']} | "
            f"{examples.replace('|', '/')} |"
        )
    if report["skipped"]:
        lines += ["", f"skip_corrupt dropped {len(report['skipped'])} files:", ""]
        lines += [f"- `{s['path']}`: {s['reason']}" for s in report["skipped"][:EXAMPLES]]
    return "\n".join(lines)


def validate_manifest(
    name: str, params: Params, manifest: pd.DataFrame, class_names: list[str], suites: Suites
) -> dict:
    cfg = params.datasets[name]
    opts = cfg.options(params.data)
    v = params.validate
    outcomes = suites.run(
        name, manifest_table(manifest), manifest_expectations(v, opts, cfg, len(class_names))
    )
    outcomes += suites.run(
        f"{name}-class-counts", class_counts(manifest, class_names), class_count_expectations(v)
    )
    return {
        "dataset": name,
        "success": all(o["success"] for o in outcomes),
        "rows": len(manifest),
        "expectations": outcomes,
        "skipped": load_skipped(prepared_root(name)),
    }


@task(name="validate-dataset", cache_policy=NONE, **TRANSIENT)
def validate_dataset(name: str, params: Params, suites: Suites) -> dict:
    log = get_run_logger()
    root = prepared_root(name)
    manifest = load_manifest(root)
    class_names = list(load_prepared(root).class_names)
    report = validate_manifest(name, params, manifest, class_names, suites)
    write_json(validation_result(name), report)
    rows = [
        {k: o[k] for k in ("check", "success", "unexpected_count")} for o in report["expectations"]
    ]
    publish(artifact_key("validation", name), summary_line(report), summary_markdown(report), rows)
    (log.info if report["success"] else log.error)(summary_line(report))
    for s in report["skipped"]:
        log.warning("%s: skipped undecodable %s (%s)", name, s["path"], s["reason"])
    return report

"""Great Expectations suite on each prepared dataset's manifest."""

from __future__ import annotations

import json

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.config import Params
from simclr.data.prepared import load_manifest
from simclr.io import write_json
from tasks.paths import REPORTS, prepared_root

REPORT_DIR = REPORTS / "validation"


def build_expectations(params: Params, class_ids: list[int]) -> list:
    import great_expectations as gx

    size = params.data.image_size
    e = gx.expectations
    return [
        e.ExpectTableRowCountToBeBetween(
            min_value=params.validate.min_rows, max_value=params.validate.max_rows
        ),
        e.ExpectColumnValuesToBeInSet(column="label", value_set=class_ids),
        e.ExpectColumnValuesToBeInSet(column="height", value_set=[size]),
        e.ExpectColumnValuesToBeInSet(column="width", value_set=[size]),
        e.ExpectColumnValuesToBeInSet(column="channels", value_set=[1, 3]),
        e.ExpectColumnValuesToBeInSet(column="split", value_set=["train", "test"]),
    ]


def run_suite(manifest: pd.DataFrame, expectations: list, name: str) -> dict:
    """Run the expectations on the manifest; every expectation's outcome and failing rows."""
    import great_expectations as gx

    context = gx.get_context(mode="ephemeral")
    asset = context.data_sources.add_pandas("manifests").add_dataframe_asset(name)
    batch = asset.add_batch_definition_whole_dataframe("all")
    suite = context.suites.add(gx.ExpectationSuite(name=f"{name}-manifest"))
    for expectation in expectations:
        suite.add_expectation(expectation)
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}-validation", data=batch, suite=suite)
    )
    frame = manifest.assign(row=range(len(manifest)))
    result = definition.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["row"]},
    )
    outcomes = []
    for r in result.results:
        kwargs = {k: v for k, v in r.expectation_config.kwargs.items() if k != "batch_id"}
        rows = [int(u["row"]) for u in r.result.get("unexpected_index_list") or []]
        outcomes.append(
            {
                "expectation": r.expectation_config.type,
                "kwargs": _plain(kwargs),
                "success": bool(r.success),
                "observed_value": _plain(r.result.get("observed_value")),
                "unexpected_count": int(r.result.get("unexpected_count") or 0),
                "failing_rows": manifest.iloc[rows[:20]][["split", "index", "label"]].to_dict(
                    "records"
                ),
            }
        )
    return {"dataset": name, "success": bool(result.success), "expectations": outcomes}


def _plain(x):
    """GX results hold numpy scalars; make them JSON-able."""
    return json.loads(json.dumps(x, default=str))


def summary_line(report: dict) -> str:
    failed = [o for o in report["expectations"] if not o["success"]]
    if not failed:
        return f"{report['dataset']}: all {len(report['expectations'])} expectations passed"
    parts = []
    for o in failed:
        detail = o["kwargs"].get("column", "")
        rows = o["failing_rows"][:3]
        parts.append(
            f"{o['expectation']}({detail}) failed: {o['unexpected_count']} rows"
            + (f", e.g. {rows}" if rows else f", observed {o['observed_value']}")
        )
    return f"{report['dataset']}: " + "; ".join(parts)


@task(name="validate-dataset", cache_policy=NONE)
def validate_dataset(name: str, params: Params) -> dict:
    log = get_run_logger()
    root = prepared_root(name)
    manifest = load_manifest(root)
    class_ids = list(range(len(json.loads((root / "classes.json").read_text()))))
    report = run_suite(manifest, build_expectations(params, class_ids), name)
    write_json(REPORT_DIR / f"{name}.json", report)
    (log.info if report["success"] else log.error)(summary_line(report))
    return report

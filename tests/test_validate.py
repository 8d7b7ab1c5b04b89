import pandas as pd

from simclr.config import Params, load_params
from simclr.data.embedded import load_source
from simclr.data.prepared import manifest, split_source
from tasks.validate import build_expectations, run_suite, summary_line


def faces_manifest() -> pd.DataFrame:
    return manifest(split_source(load_source("faces", 0), 16, 0.25, seed=0))


def params(tmp_path) -> Params:
    p = tmp_path / "params.yaml"
    p.write_text(
        "data: {image_size: 16}\ndatasets: {faces: {source: faces}}\n"
        "pretrain: {dataset: faces}\ntransfer: {datasets: []}\n"
    )
    return load_params(p)


def test_clean_manifest_passes(tmp_path):
    report = run_suite(faces_manifest(), build_expectations(params(tmp_path), [0, 1]), "faces")
    assert report["success"] and all(o["success"] for o in report["expectations"])
    assert "all 6 expectations passed" in summary_line(report)


def test_unknown_label_fails_naming_rows(tmp_path):
    m = faces_manifest()
    m.loc[3, "label"] = 7
    report = run_suite(m, build_expectations(params(tmp_path), [0, 1]), "faces")
    assert not report["success"]
    (failed,) = [o for o in report["expectations"] if not o["success"]]
    assert failed["expectation"] == "expect_column_values_to_be_in_set"
    assert failed["unexpected_count"] == 1 and failed["failing_rows"][0]["label"] == 7
    assert "label" in summary_line(report) and "1 rows" in summary_line(report)


def test_wrong_shape_and_too_few_rows_fail(tmp_path):
    m = faces_manifest().head(10).copy()
    m["height"] = 12
    report = run_suite(m, build_expectations(params(tmp_path), [0, 1]), "faces")
    failed = {
        o["expectation"] + o["kwargs"].get("column", "")
        for o in report["expectations"]
        if not o["success"]
    }
    assert failed == {
        "expect_table_row_count_to_be_between",
        "expect_column_values_to_be_in_setheight",
    }

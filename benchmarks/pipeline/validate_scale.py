"""Wall time of the validate stage (`python -m flows.validate`, every Great Expectations check
and the Data Docs) on a generated manifest of a million images.

    python -m benchmarks.pipeline.validate_scale [--rows 1000000] [--faults 10] [--timeout 900] \
        [--out benchmarks/results/validate_scale.jsonl]

In a throwaway clone of HEAD (`workspace.clone`), `data/prepared/big/` gets a generated
`manifest.parquet` of `--rows` rows (90% train, 10% test, 10 balanced classes, 32x32x3, pixel
mean and std drawn at random, a distinct sha256 per image) and `classes.json`; the arrays are
one-row placeholders (validation reads the manifest, not the pixels). With `--faults K`, K test
images repeat a training image's sha256 (leakage: K failing rows) and K training images repeat
another training image's (duplicates: 2K failing rows, both of each pair). The stage is timed
(a Prefect temporary server included), stopped after `--timeout` seconds. The record keeps each
check's outcome, the example rows the two fault checks name, and the Data Docs pages built
(the clone is removed afterwards).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import results_file, save
from benchmarks.pipeline.workspace import clone, load_params, stage_env

CLASSES = 10
CHECKS = ("no duplicate images within a split", "no test image also in a training split")


def generated_manifest(rows: int, faults: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_test = rows // 10
    split = np.array(["train"] * (rows - n_test) + ["test"] * n_test, dtype=object)
    index = np.concatenate([np.arange(rows - n_test), np.arange(n_test)])
    sha = [hashlib.sha256(i.to_bytes(8, "little")).hexdigest() for i in range(rows)]
    for k in range(faults):  # test image k leaks train image k; the last train images repeat
        sha[rows - n_test + k] = sha[k]  # train images faults .. 2 faults - 1
        sha[rows - n_test - k - 1] = sha[faults + k]
    return pd.DataFrame(
        {
            "split": split,
            "index": index,
            "label": index % CLASSES,
            "source": None,
            "height": 32,
            "width": 32,
            "channels": 3,
            "pixel_mean": rng.uniform(20, 230, rows),
            "pixel_std": rng.uniform(5, 80, rows),
            "sha256": sha,
            "error": None,
        }
    ).astype({"source": "object", "error": "object", "sha256": "object"})


def write_prepared(root: Path, manifest: pd.DataFrame) -> None:
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        np.save(root / split / "images.npy", np.zeros((1, 32, 32, 3), np.uint8))
        np.save(root / split / "labels.npy", np.zeros(1, np.int64))
    (root / "classes.json").write_text(json.dumps([f"class{c}" for c in range(CLASSES)]))
    manifest.to_parquet(root / "manifest.parquet", index=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--faults", type=int, default=10)
    ap.add_argument("--timeout", type=int, default=900)
    ap.add_argument("--out", type=Path, default=results_file("validate_scale"))
    args = ap.parse_args()
    params = load_params()
    params["datasets"] = {"big": {"source": "npz", "path": "unused.npz", "image_size": 32}}
    params["pretrain"]["dataset"] = "big"
    params["transfer"] = {"datasets": []}
    path = clone(params)
    try:
        write_prepared(path / "data/prepared/big", generated_manifest(args.rows, args.faults))
        start = time.perf_counter()
        proc = subprocess.run(
            ["timeout", "-k", "10", str(args.timeout), "python", "-m", "flows.validate"],
            cwd=path,
            env=stage_env(),
            capture_output=True,
            text=True,
            check=False,
        )
        seconds = time.perf_counter() - start
        stopped = proc.returncode in (124, 137)
        result_file = path / "reports/validation/results/big.json"
        outcomes, examples, docs = None, None, None
        if not stopped and result_file.is_file():
            report = json.loads(result_file.read_text())
            outcomes = {
                o["check"]: {"success": o["success"], "unexpected_count": o["unexpected_count"]}
                for o in report["expectations"]
            }
            # What a user reads for the faults: the failing rows named (capped by GX).
            examples = {
                o["check"]: o["examples"] for o in report["expectations"] if o["check"] in CHECKS
            }
            docs = sorted(
                str(p.relative_to(path)) for p in path.glob("reports/validation/docs/**/*.html")
            )
        elif not stopped:
            sys.exit(f"validate failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    finally:
        shutil.rmtree(path, ignore_errors=True)
    shown = f"> {seconds:.0f} s (stopped)" if stopped else f"{seconds:.1f} s"
    faults = f"{args.faults} leaks, {args.faults} duplicates"
    print(f"validate on {args.rows:,} rows ({faults}): {shown}")
    for check in CHECKS if outcomes else ():
        print(f"  {check}: {outcomes[check]}, {len(examples[check])} example rows named")
    if docs is not None:
        print(f"  Data Docs: {len(docs)} HTML pages")
    record = {
        "rows": args.rows,
        "faults": args.faults,
        "seconds": round(seconds, 1),
        "stopped": stopped,
        "exit_status": proc.returncode,
        "outcomes": outcomes,
        "examples": examples,
        "data_docs_pages": docs,
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())

"""One record and one table from the result files tools/gpu/check.sh wrote into a folder (one
JSON Lines file a run, its last line read):
every configuration's images/s, its ratio to the lightly reference of the same batch and model
in the same call, to the published A100 figure and to the H200 goal; the augmentation share,
peak memory and MFU; the real run's probes against random init.

    python3 -m tools.gpu.summary WORK_DIR OUT.jsonl
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmarks.common import save
from benchmarks.gpu.throughput import GOAL_H200, PUBLISHED_A100


def row(name: str, r: dict, references: dict) -> dict:
    s = r["settings"]
    rate = r["images_per_s"]["median"]
    ref = references.get((s["encoder"], s["image_size"], s["batch"]))
    return {
        "name": name,
        "images_per_s": rate,
        "ratio_to_lightly": rate / ref if ref and s["reference"] == "ours" else None,
        "ratio_to_published_a100": rate / PUBLISHED_A100,
        "ratio_to_h200_goal": rate / GOAL_H200,
        "augment_share": r.get("augment", {}).get("share"),
        "max_memory_allocated_gib": r["environment"]["max_memory_allocated_gib"],
        "mfu_vs_datasheet_bf16": r["utilisation"]["mfu_vs_datasheet_bf16"],
        "mfu_vs_measured_bf16_matmul": r["utilisation"]["mfu_vs_measured_bf16_matmul"],
    }


def main(argv: list[str]) -> int:
    work, out = Path(argv[0]), Path(argv[1])
    runs = {
        p.stem: json.loads(p.read_text().splitlines()[-1]) for p in sorted(work.glob("*.jsonl"))
    }
    learn = runs.pop("learn", None)
    references = {
        (r["settings"]["encoder"], r["settings"]["image_size"], r["settings"]["batch"]): r[
            "images_per_s"
        ]["median"]
        for r in runs.values()
        if r["settings"]["reference"] == "lightly"
    }
    rows = [row(name, r, references) for name, r in runs.items()]
    print("| run | images/s | x lightly | x A100 4,200 | x goal 8,400 | aug share | GiB | MFU |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for x in rows:
        cells = [
            f"{x['images_per_s']:.0f}",
            *(
                "-" if x[k] is None else f"{x[k]:.2f}x"
                for k in ("ratio_to_lightly", "ratio_to_published_a100", "ratio_to_h200_goal")
            ),
            "-" if x["augment_share"] is None else f"{100 * x['augment_share']:.1f}%",
            "-"
            if x["max_memory_allocated_gib"] is None
            else f"{x['max_memory_allocated_gib']:.1f}",
            f"{100 * x['mfu_vs_datasheet_bf16']:.1f}%",
        ]
        print(f"| {x['name']} | " + " | ".join(cells) + " |")
    if learn is not None:
        print(
            f"\nreal run: {learn['epochs']} epochs, {learn['pretrain_seconds']:.0f} s pretraining; "
            f"{learn['scores']}"
        )
    device = "cuda" if any(r["settings"]["device"] == "cuda" for r in runs.values()) else "cpu"
    return save(out, {"rows": rows, "learn": learn, "runs": runs}, device)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""Linear evaluation of the pretrained encoder on a prepared dataset, with baselines.

Used by both the evaluate stage (the pretraining dataset) and transfer (downstream datasets).
"""

from __future__ import annotations

from pathlib import Path

import torch
from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from simclr.checkpoint import load_encoder
from simclr.config import Params, to_dict
from simclr.data.prepared import load_prepared
from simclr.device import seed_everything, select_device
from simclr.errors import PipelineError
from simclr.evaluate import linear_evaluation
from simclr.io import write_json
from simclr.models import build_model
from simclr.provenance import provenance
from tasks.paths import prepared_root


@task(name="linear-evaluation", cache_policy=NONE)
def evaluate_on(dataset: str, checkpoint: Path, out: Path, params: Params) -> dict:
    """Write <out>/metrics.json and <out>/details.json; return the details."""
    log = get_run_logger()
    device = select_device(params.pretrain.device)
    seed_everything(params.seed, device)
    data = load_prepared(prepared_root(dataset))
    encoder, meta = load_encoder(checkpoint, device)
    if data.train.images.shape[-1] != meta["in_channels"]:
        raise PipelineError(
            f"data/prepared/{dataset}: images have {data.train.images.shape[-1]} channels but "
            f"the checkpoint expects {meta['in_channels']}; prepare both with the same channels"
        )
    # Baseline: the same architecture with random weights (seeded), equally frozen.
    torch.manual_seed(params.seed)
    random_encoder, _ = build_model(params.model, meta["in_channels"], meta["image_size"])
    random_encoder = random_encoder.to(device)
    result = linear_evaluation(
        data,
        {"simclr": encoder, "random_init": random_encoder},
        params.evaluate,
        params.seed,
        device,
    )
    # metrics.json holds the headline numbers only (what `dvc exp show` lists); per-seed runs,
    # protocol and provenance go beside it in details.json.
    metrics = {
        "linear": {
            method: {f: {k: r[k] for k in ("mean", "std", "n")} for f, r in by_fraction.items()}
            for method, by_fraction in result["linear"].items()
        }
    }
    details = {
        "dataset": dataset,
        "linear": result["linear"],
        "protocol": {
            "probe": "standardized frozen h + multinomial logistic regression (L-BFGS)",
            "evaluate": to_dict(params.evaluate),
            "train_images": int(len(data.train.labels)),
            "test_images": int(len(data.test.labels)),
        },
        "checkpoint": {"dataset": meta.get("dataset"), "provenance": meta.get("provenance")},
        "provenance": provenance(str(device)),
    }
    write_json(out / "details.json", details)
    write_json(out / "metrics.json", metrics)
    log.info("wrote %s", out / "metrics.json")
    return details

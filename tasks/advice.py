"""What to do about a library error, in the pipeline's terms. simclr/ states the fact (a
checkpoint not found, prepared data damaged, a loss that diverged) and names what it is about
(PipelineError.about); this table adds which stage to re-run or which params key to change.
The command-line boundary (flows/errors.py) applies it to every error it prints, so a stage
needs no code of its own for it."""

from __future__ import annotations

from simclr.errors import Damaged, NotFound, PipelineError

PRETRAIN_AGAIN = "re-run the pretrain stage (dvc repro -f -s pretrain) or restore it (dvc checkout)"
PREPARE_AGAIN = (
    "re-run the prepare stage (dvc repro -f prepare@<dataset>) or restore it (dvc checkout)"
)
LOWER_PRETRAIN = "lower pretrain.batch_size, model size or pretrain.precision"
LOWER_EVALUATE = "lower evaluate.batch_size or evaluate.finetune.batch_size"
DOWNLOAD = "or set download: true for this dataset in params.yaml (needs network)"

# (about, error class) -> what to do, appended to the library's line
ADVICE: dict[tuple[str, type[PipelineError]], str] = {
    ("checkpoint", NotFound): "run the pretrain stage first",
    ("checkpoint", Damaged): PRETRAIN_AGAIN,
    ("prepared data", NotFound): "run `dvc repro` (or the prepare stage) first",
    ("prepared data", Damaged): PREPARE_AGAIN,
    ("output", NotFound): "run the stage that writes it (dvc repro)",
    ("images", PipelineError): "check data params",
    ("divergence", PipelineError): "lower pretrain.lr or raise pretrain.warmup_epochs",
    ("pretraining memory", PipelineError): LOWER_PRETRAIN,
    ("evaluation memory", PipelineError): LOWER_EVALUATE,
    ("archive", PipelineError): DOWNLOAD,
    ("processes", PipelineError): "set pretrain.distributed.nproc_per_node",
}
# about -> the params key the library's line is about, put before it
PARAMS_KEY = {
    "device": "params.yaml: pretrain.",
    "precision": "params.yaml: pretrain.",
    "evaluate.knn_k": "params.yaml: evaluate.",
}


def advised(error: PipelineError) -> str:
    """`error`'s line with what to do about it in the pipeline, where the table has it."""
    line = PARAMS_KEY.get(error.about or "", "") + str(error)
    for cls in type(error).__mro__:
        advice = ADVICE.get((error.about or "", cls))
        if advice is not None:
            return f"{line}; {advice}"
    return line

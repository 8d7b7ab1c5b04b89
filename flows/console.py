"""`simclr`, the console script: the commands a user runs by hand.

The pipeline's stages are not among them: `python -m flows.<stage>` is what DVC runs (dvc.yaml),
and a stage run by hand outside DVC would bypass its cache and dvc.lock; `simclr run [targets]`
runs them through `dvc repro`. Each command imports what it needs when it runs, so that
`simclr --help` answers at once.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from flows.errors import ArgumentParser  # the standard library only: cheap
from tasks.paths import checkpoint  # pathlib only: cheap

CHECKPOINT = checkpoint(0)  # replica 0 of params.yaml `replicas`, the default [0, 1, 2]


WEEK_MINUTES = 7 * 24 * 60  # a longer --minutes for `simclr init` is a typo


def _add_checkpoint(parser: argparse.ArgumentParser) -> None:
    """Options of the commands that read a checkpoint: which one, how its images were resized."""
    parser.add_argument("--checkpoint", default=CHECKPOINT, help=f"default: {CHECKPOINT}")
    parser.add_argument(
        "--resize",
        default="stretch",
        help="stretch (default) or crop: as the pretraining data was prepared (params.yaml "
        "data.resize)",
    )


def _int_in(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high]. A refusal is argparse's one-line usage error
    (exit 2), before anything is loaded."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value}: allowed: {low} to {high:,}")
        return value

    return parse


def _check(argv: list[str], prog: str) -> int:
    ArgumentParser(
        prog=prog,
        description="Check ./params.yaml against the schema: prints 'params.yaml: ok', or one "
        "line naming the bad key and what is allowed (exit 2). Reads params.yaml (and, with "
        "PREFECT_API_URL set, checks that the Prefect API answers); writes nothing.",
    ).parse_args(argv)
    from flows.check import main

    main()
    return 0


def _run(argv: list[str], prog: str) -> int:
    parser = ArgumentParser(
        prog=prog,
        usage=f"{prog} [dvc repro options and targets]",
        description="Run the pipeline in this checkout: check params.yaml, then `dvc repro` "
        "(with the given options and targets, e.g. `-s pretrain`) with one local Prefect "
        "server for all stages, as `make run` does. Reads params.yaml, dvc.yaml and the stages' "
        "inputs; writes the stages' outputs (data/prepared/, models/simclr-<r>.pt, reports/) and "
        "dvc.lock.",
    )
    _, dvc_args = parser.parse_known_args(argv)
    from pathlib import Path

    from flows.check import main as check
    from flows.with_server import main as with_server

    check()
    # dvc.yaml's stages run `python -m flows.<stage>`: this interpreter's, also when `simclr`
    # was called by its path (.venv/bin/simclr) without the environment on PATH.
    here = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([here, os.environ.get("PATH", "")])
    dvc = Path(sys.executable).with_name("dvc")
    return with_server([str(dvc) if dvc.exists() else "dvc", "repro", *dvc_args])


def _compare(argv: list[str], prog: str) -> int:
    from flows.compare import main

    return main(argv, prog)


def _serve(argv: list[str], prog: str) -> int:
    from flows.serve import main

    main(argv, prog)
    return 0


def _embed(argv: list[str], prog: str) -> int:
    parser = ArgumentParser(
        prog=prog,
        description="Embed images with the pretrained encoder: h = f(x), as evaluation uses, "
        "in batches on the best device, each image resized to the checkpoint's image size and "
        "converted to its channels as the prepare stage does. Reads the checkpoint and SOURCE: "
        "an image folder (SOURCE/<class>/<images>, or images directly in SOURCE, any format "
        "Pillow reads) or a prepared dataset (data/prepared/<name>). Writes OUTPUT, a Parquet "
        "file with one row per image: path, label (the class folder; null in a flat folder), "
        "split and index (prepared datasets), and h (float32 list).",
    )
    from simclr.config import MAX_BATCH, MAX_PROCESSES  # the bounds params.yaml has too

    parser.add_argument("source", help="image folder or prepared dataset")
    parser.add_argument("output", help="the Parquet file to write")
    parser.add_argument(
        "--batch-size", type=_int_in(1, MAX_BATCH), default=256, help="images per batch"
    )
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or mps")
    parser.add_argument(
        "--workers",
        type=_int_in(1, MAX_PROCESSES),
        help="decoding threads (default: one per CPU)",
    )
    _add_checkpoint(parser)
    parser.add_argument(
        "--skip-bad",
        action="store_true",
        help="skip files that do not decode, naming each (default: stop at the first)",
    )
    args = parser.parse_args(argv)
    import logging

    from tqdm.contrib.logging import logging_redirect_tqdm

    from simclr.data.imagefolder import UndecodableImage
    from simclr.embed import embed
    from simclr.encoder import load_encoder
    from simclr.errors import PipelineError
    from simclr.io import check_target

    check_target(args.output)  # before the checkpoint is read: a bad OUTPUT costs nothing
    logging.basicConfig(level=logging.INFO, format="%(message)s")  # skipped files, progress
    encoder, prep = load_encoder(args.checkpoint, args.device, args.resize)
    meta = {"checkpoint": str(args.checkpoint), "source": args.source, "resize": args.resize}
    options = (args.batch_size, args.workers, args.skip_bad, meta)
    with logging_redirect_tqdm():  # a skipped file's warning does not break the bar
        try:
            done = embed(encoder, prep, args.source, args.output, *options)
        except UndecodableImage as e:
            raise PipelineError(f"{e}, or pass --skip-bad to skip such files") from None
    print(
        f"embedded {done.rows:,} images of {args.source} in {done.seconds:.1f} s "
        f"({done.images_per_s:,.0f} images/s, {prep.device}) -> {done.path} "
        f"(h: {done.dim} floats)"
    )
    if done.skipped:
        print(f"skipped {len(done.skipped)} file(s) that did not decode (named above)")
    return 0


def _export(argv: list[str], prog: str) -> int:
    parser = ArgumentParser(
        prog=prog,
        description="Export the pretrained encoder for use without this code. Reads the "
        "checkpoint; writes into OUT_DIR encoder.torchscript.pt (TorchScript), encoder.onnx "
        "(ONNX, needs the onnx extra) and preprocessing.json (image size, channels, input "
        "range, normalisation, ONNX opset). Both models take float32 (N, C, H, W) images in "
        "[0, 1] and return h.",
    )
    parser.add_argument("out_dir", help="folder for the exported files")
    parser.add_argument(
        "--format", nargs="+", default=["torchscript", "onnx"], help="torchscript and/or onnx"
    )
    _add_checkpoint(parser)
    args = parser.parse_args(argv)
    from pathlib import Path

    from simclr.encoder import load_encoder
    from simclr.export import PREPROCESSING, check_out_dir, export_encoder

    check_out_dir(args.out_dir)  # before the checkpoint is read
    encoder, prep = load_encoder(args.checkpoint, "cpu", args.resize)
    info = export_encoder(encoder, prep, Path(args.checkpoint), args.out_dir, tuple(args.format))
    for name in [*info["files"].values(), PREPROCESSING]:
        print(Path(args.out_dir) / name)
    if "onnx_opset" in info:
        print(f"ONNX opset {info['onnx_opset']}")
    return 0


def _minutes(text: str) -> float:
    """--minutes as a number of minutes from a second to a week, or one error line."""
    from simclr.errors import PipelineError

    try:
        minutes = float(text)
    except ValueError:
        minutes = float("nan")
    if not 0 < minutes <= WEEK_MINUTES:  # also false for nan
        raise PipelineError(
            f"--minutes {text!r}: give the run's budget as a number of minutes, above 0 and at "
            f"most {WEEK_MINUTES} (a week)"
        )
    return minutes


def _init(argv: list[str], prog: str) -> int:
    parser = ArgumentParser(
        prog=prog,
        description="Write a params.yaml for an image folder (TRAIN_DIR/<class>/<images>), "
        "sized so that the whole `simclr run` fits --minutes on this machine. Reads TRAIN_DIR "
        "and TEST_DIR (class folders, file counts, the headers of a sample of files; nothing "
        "is decoded) and measures a few pretraining steps here on random images (about 20 s). "
        "Writes OUTPUT, every param with its description, the summary of what was chosen and "
        "why as its header comment; prints that summary. An existing OUTPUT is kept unless "
        "--force.",
    )
    parser.add_argument("train_dir", help="the training images: TRAIN_DIR/<class>/<images>")
    parser.add_argument("--test", help="a separate test folder with the same classes")
    parser.add_argument("--minutes", default="30", help="budget of the whole run (default 30)")
    parser.add_argument("--force", action="store_true", help="replace an existing OUTPUT")
    parser.add_argument("--output", default="params.yaml", help="default: params.yaml")
    args = parser.parse_args(argv)
    from pathlib import Path

    from simclr.errors import PipelineError
    from simclr.io import check_target

    minutes, output = _minutes(args.minutes), check_target(Path(args.output))
    if output.exists() and not args.force:
        raise PipelineError(f"{output}: exists and is kept; pass --force to replace it")
    from simclr.device import select_device
    from simclr.io import write_text
    from tasks.init_folder import check_test_classes, survey
    from tasks.init_recipe import choose, summary
    from tasks.init_timing import measure
    from tasks.params_yaml import params_yaml

    train = survey(args.train_dir)
    test = survey(args.test) if args.test else None
    if test is not None:
        check_test_classes(train, test)
    recipe = choose(train, test, select_device("auto").type, minutes, measure)
    text = summary(recipe, train, test)
    write_text(output, params_yaml(recipe.params, f"{text}\n"))
    print(f"{text}\nwrote {output}")
    return 0


# name -> (handler(argv, prog) -> exit code, one line for `simclr --help`)
COMMANDS: dict[str, tuple[Callable[[list[str], str], int], str]] = {
    "init": (_init, "write a params.yaml for an image folder, sized to a time budget"),
    "check": (_check, "check params.yaml (reads params.yaml)"),
    "run": (_run, "run the pipeline: dvc repro with one Prefect server (writes its outputs)"),
    "compare": (_compare, "compare DVC experiments as a table (reads dvc exp show)"),
    "serve": (_serve, "serve the pipeline on a cron schedule (registers a deployment)"),
    "embed": (_embed, "embed an image folder or prepared dataset -> Parquet"),
    "export": (_export, "export the encoder as TorchScript and ONNX + preprocessing.json"),
}
USAGE = "usage: simclr [-h] [--version] COMMAND [options]"


def _help() -> str:
    lines = [USAGE, "", "The SimCLR pipeline's commands; `simclr COMMAND --help` for each.", ""]
    lines += [f"  {name:<9} {about}" for name, (_, about) in COMMANDS.items()]
    lines += ["", "Stages run through DVC: `simclr run` (dvc repro), `dvc repro -s <stage>`."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(_help(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] == "--version":
        from importlib.metadata import version

        print(f"simclr {version('simclr-pipeline')}")
        return 0
    if argv[0] not in COMMANDS:
        known = ", ".join(COMMANDS)
        print(
            f"error: unknown command {argv[0]!r}; one of: {known} (see simclr --help)",
            file=sys.stderr,
        )
        return 2
    handler, _ = COMMANDS[argv[0]]
    from flows.errors import user_errors  # the one boundary; imports neither prefect nor torch

    with user_errors():  # a user's error: one line, exit 2; Ctrl-C: one line, exit 130
        return handler(argv[1:], f"simclr {argv[0]}")


if __name__ == "__main__":
    sys.exit(main())

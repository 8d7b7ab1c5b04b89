"""The encoder for use without this code: TorchScript and ONNX files of f (images -> h), and a
JSON beside them saying what the files expect (image size, channels, input range,
normalisation; the ONNX opset).

Both files take float32 (N, C, H, W) images in [0, 1], any batch size, and normalise inside,
as the encoder does; `Preprocessing.describe` is the one description of the input. ONNX goes
through torch's dynamo exporter (torch.export, then onnxscript), which needs the `onnx` extra.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from simclr.encoder import Preprocessing
from simclr.errors import PipelineError
from simclr.io import atomic_path, check_target, write_json
from simclr.models import Encoder

FORMATS = ("torchscript", "onnx")
FILES = {"torchscript": "encoder.torchscript.pt", "onnx": "encoder.onnx"}
PREPROCESSING = "preprocessing.json"
EXPORTED = frozenset([*FILES.values(), PREPROCESSING])  # an export's files, and only those
INPUT, OUTPUT = "images", "h"  # the ONNX graph's input and output names
EXTRA = "pip install 'simclr-pipeline[onnx]'"


def example_input(prep: Preprocessing, n: int = 2) -> torch.Tensor:
    """A batch the exporters trace with: only its shape and dtype matter."""
    return torch.rand(n, prep.channels, prep.image_size, prep.image_size)


def export_torchscript(encoder: Encoder, example: torch.Tensor, path: Path) -> Path:
    """A traced TorchScript module (torch.jit.load, or LibTorch's torch::jit::load in C++)."""
    with warnings.catch_warnings():
        # torch 2.14 marks torch.jit deprecated (FutureWarning) in favour of torch.export;
        # TorchScript is still what LibTorch and older runtimes load, so it is written on
        # purpose here, and the warning would only tell the user what this comment says.
        warnings.filterwarnings("ignore", r"`torch\.jit\.\w+` is deprecated", FutureWarning)
        traced = torch.jit.trace(encoder, example)
        torch.jit.save(traced, str(path))
        return path


def export_onnx(encoder: Encoder, example: torch.Tensor, path: Path) -> int:
    """An ONNX graph with a dynamic batch axis; the default-domain opset it uses."""
    try:
        import onnxscript  # noqa: F401  (torch's exporter needs it; fail before any work)
    except ImportError:
        raise PipelineError(f"ONNX export needs the onnx extra: {EXTRA}") from None
    program = torch.onnx.export(
        encoder,
        (example,),
        str(path),
        dynamo=True,
        input_names=[INPUT],
        output_names=[OUTPUT],
        dynamic_shapes=({0: torch.export.Dim("batch", min=1)},),
        external_data=False,  # one self-contained file
        verbose=False,
    )
    return int(program.model.opset_imports[""])


def check_out_dir(out_dir: str | Path) -> Path:
    """`out_dir` if an export may be written there: a new folder, an empty one or an earlier
    export (its files are replaced as a set); a folder holding anything else is refused, so that
    no file of the user's is ever replaced."""
    out_dir = check_target(out_dir, tree=True)
    if out_dir.is_dir():
        foreign = sorted(p.name for p in out_dir.iterdir() if p.name not in EXPORTED)
        if foreign:
            raise PipelineError(
                f"{out_dir}: holds files that are not an export ({', '.join(foreign[:3])}"
                f"{', ...' if len(foreign) > 3 else ''}); name a new or empty folder, or an "
                "earlier export's"
            )
    return out_dir


def export_encoder(
    encoder: Encoder,
    prep: Preprocessing,
    checkpoint: Path,
    out_dir: str | Path,
    formats: tuple[str, ...] = FORMATS,
) -> dict:
    """Write `formats` of `encoder` and PREPROCESSING into `out_dir`, all together or not at
    all (a temporary folder renamed into place; an earlier export there is replaced as a whole,
    so no file of an older set stays beside the new one); what PREPROCESSING holds."""
    out_dir = check_out_dir(out_dir)
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise PipelineError(f"export formats {unknown or '[]'}: choose from {', '.join(FORMATS)}")
    encoder = encoder.to("cpu").eval()  # exported for any device: weights on the CPU
    example = example_input(prep)
    info = {
        **prep.describe(),
        "input_name": INPUT,
        "output": {"name": OUTPUT, "dim": encoder.out_dim, "what": "h = f(x), the encoder's"},
        "batch": "any (dynamic first axis)",
        "files": {},
        "checkpoint": {"path": str(checkpoint), "sha256": _sha256(checkpoint)},
        "torch": torch.__version__,
    }
    with atomic_path(out_dir, tree=True) as tmp:
        tmp.mkdir()
        if "onnx" in formats:
            info["onnx_opset"] = export_onnx(encoder, example, tmp / FILES["onnx"])
            info["files"]["onnx"] = FILES["onnx"]
        if "torchscript" in formats:
            export_torchscript(encoder, example, tmp / FILES["torchscript"])
            info["files"]["torchscript"] = FILES["torchscript"]
        write_json(tmp / PREPROCESSING, info)
    return info


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()

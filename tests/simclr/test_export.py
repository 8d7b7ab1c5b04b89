"""`simclr export`: TorchScript and ONNX files that give PyTorch's h on real photographs (to
1e-4, through torch.jit.load and ONNX Runtime, at two batch sizes), and the preprocessing JSON
that says what they take."""

from __future__ import annotations

import json
import warnings

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from helpers import photo_files, tiny_checkpoint, tree_digest
from PIL import Image

from flows.console import main
from simclr.encoder import load_encoder
from simclr.export import FILES, INPUT, OUTPUT, PREPROCESSING, export_encoder

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(the encoder, real photographs preprocessed for it, the export folder)."""
    root = tmp_path_factory.mktemp("export")
    checkpoint = tiny_checkpoint(root / "simclr.pt", channels=3, image_size=32)
    encoder, preprocess = load_encoder(checkpoint, device="cpu")
    images = [Image.open(p) for p in photo_files()]
    crops = [img.crop((0, 0, img.width // 2, img.height // 2)) for img in images]
    x = preprocess(images + crops)  # 16 real images
    export_encoder(encoder, preprocess, checkpoint, root / "out")
    return encoder, x, root / "out"


def _worst(a: np.ndarray, b: torch.Tensor) -> float:
    return float(np.abs(a - b.numpy()).max())


def test_onnx_runtime_and_torchscript_give_pytorchs_h_on_real_images(exported):
    encoder, x, out = exported
    with torch.no_grad():
        expected = encoder(x)
    session = onnxruntime.InferenceSession(
        str(out / FILES["onnx"]), providers=["CPUExecutionProvider"]
    )
    with warnings.catch_warnings():  # torch 2.14 deprecates torch.jit; loading it is the point
        warnings.filterwarnings("ignore", r"`torch\.jit\.load` is deprecated", FutureWarning)
        scripted = torch.jit.load(str(out / FILES["torchscript"]))
    worst = {"onnxruntime": 0.0, "torchscript": 0.0}
    for batch in (x[:1], x):  # the batch axis is dynamic
        with torch.no_grad():
            want = encoder(batch)
            worst["torchscript"] = max(worst["torchscript"], _worst(scripted(batch).numpy(), want))
        (got,) = session.run([OUTPUT], {INPUT: batch.numpy()})
        worst["onnxruntime"] = max(worst["onnxruntime"], _worst(got, want))
    print(f"worst |h - PyTorch's h| on {len(x)} real images: {worst}")  # for the record (-s)
    assert expected.abs().max() > 0.1  # h is not trivially small
    assert max(worst.values()) <= TOLERANCE, worst


def test_the_json_says_what_the_files_take_and_the_onnx_opset(exported):
    encoder, x, out = exported
    info = json.loads((out / PREPROCESSING).read_text())
    assert info["image_size"] == 32 and info["channels"] == 3 and info["color_mode"] == "RGB"
    assert info["normalization"] == {"mean": [0.5] * 3, "std": [0.5] * 3, "inside_model": True}
    assert info["output"]["dim"] == encoder.out_dim
    model = onnx.load(str(out / FILES["onnx"]))
    assert info["onnx_opset"] == next(o.version for o in model.opset_import if o.domain == "")
    assert [i.name for i in model.graph.input] == [INPUT] and info["files"] == FILES
    # the normalisation is inside: [0, 1] inputs, as the JSON says, give the encoder's h
    assert float(x.min()) >= 0 and float(x.max()) <= 1


def test_simclr_export_writes_the_files_and_a_bad_format_is_one_line(tmp_path, capsys):
    checkpoint = tiny_checkpoint(tmp_path / "simclr.pt", channels=1, image_size=8)
    cmd = ["export", str(tmp_path / "out"), "--checkpoint", str(checkpoint)]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main([*cmd, "--format", "torchscript"]) == 0
    assert caught == []  # not even torch.jit's deprecation (see simclr/export.py)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(
        [FILES["torchscript"], PREPROCESSING]
    )
    with pytest.raises(SystemExit) as exit_:
        main([*cmd, "--format", "tflite"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err == (
        "error: export formats ['tflite']: choose from torchscript, onnx\n"
    )


def test_an_export_never_touches_a_folder_of_the_users_and_replaces_its_own_set_whole(
    tmp_path, capsys, monkeypatch
):
    import simclr.export as export_module

    checkpoint = tiny_checkpoint(tmp_path / "simclr.pt", channels=1, image_size=8)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("precious")
    before = tree_digest(mine)
    with pytest.raises(SystemExit) as exit_:
        main(["export", str(mine), "--checkpoint", str(checkpoint)])
    assert exit_.value.code == 2 and tree_digest(mine) == before
    assert capsys.readouterr().err == (
        f"error: {mine}: holds files that are not an export (notes.txt); name a new or empty "
        "folder, or an earlier export's\n"
    )
    out = tmp_path / "out"
    assert (
        main(["export", str(out), "--checkpoint", str(checkpoint), "--format", "torchscript"]) == 0
    )
    first = tree_digest(out)
    # A failure after the first file of a new set: the earlier set stays, whole and alone.
    monkeypatch.setattr(export_module, "write_json", lambda *a: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        export_module.export_encoder(*load_encoder(checkpoint), checkpoint, out, ("torchscript",))
    assert tree_digest(out) == first and [p.name for p in tmp_path.glob(".out.*")] == []

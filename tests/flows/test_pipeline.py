"""flows/pipeline.py: the override syntax handed to `dvc exp run`, checked against DVC's own
override parser."""

from __future__ import annotations

from flows.pipeline import override_args


def test_override_values_survive_dvc_parsing(tmp_path):
    """Each value, as DVC's own override parser applies it to a params file, comes back as it
    was: quotes, backslashes, non-ASCII, lists, null and infinity."""
    from dvc.utils.hydra import apply_overrides

    values = {
        "a": 'say "hi"',
        "b": "C:\\data\\",
        "c": "café",
        "d": [0.1, 1],
        "e": None,
        "f": float("inf"),
        "g": "x,y=z",
    }
    path = tmp_path / "params.yaml"
    path.write_text("a: 0\n")
    overrides = [arg for arg in override_args(values) if arg != "-S"]
    apply_overrides(str(path), overrides)
    import yaml

    got = yaml.safe_load(path.read_text())
    assert {k: got[k] for k in values} == values


def test_overrides_become_dvc_set_arguments():
    args = override_args(
        {"pretrain.epochs": 2, "datasets.x": {"source": "npz", "path": "a b.npz"}, "f": [0.1, 1]}
    )
    assert args == [
        "-S", "++pretrain.epochs=2",
        "-S", '++datasets.x.source="npz"',
        "-S", '++datasets.x.path="a b.npz"',
        "-S", "++f=[0.1,1]",
    ]  # fmt: skip

"""tasks/params_yaml.py: the params.yaml written from a `Params` loads back as those params, has
every key with its description as its comment, and keeps the header on top."""

from __future__ import annotations

from helpers import params_differences
from ruamel.yaml import YAML

from simclr.config import Params, from_dict, load_params
from tasks.params_yaml import params_yaml


def test_the_written_file_loads_back_as_the_params_with_every_description(tmp_path):
    raw = {
        "seed": 3,
        "datasets": {
            "pets": {"source": "imagefolder", "root": "/data/pets", "channels": 1},
            "digits": {"source": "digits"},
        },
        "pretrain": {"dataset": "pets", "epochs": 40},
        "transfer": {"datasets": ["digits"]},
        "replicas": [0, 1, 2],
    }
    params = from_dict(Params, raw)
    path = tmp_path / "params.yaml"
    path.write_text(params_yaml(params, header="made by a test\nsecond line"))
    assert load_params(path) == params
    assert params_differences(YAML().load(path), Params) == []  # every key, its description
    text = path.read_text()
    assert text.startswith("# made by a test\n# second line\n")
    assert "pets: {source: imagefolder, root: /data/pets, channels: 1}" in text  # only its keys
    assert "replicas: [0, 1, 2]" in text and ": null" in text  # flow lists; null, not empty

"""A params.yaml from a `Params`: every key in the models' order, each field's description as its
end-of-line comment (as the shipped params.yaml; tests compare them the same way), a header
comment on top. Written from the models, never by editing text, so a new param appears in it
by itself."""

from __future__ import annotations

from io import StringIO

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from simclr.config import DatasetConfig, Params

COMMENT_COLUMN = 27  # where the shipped params.yaml aligns its comments


def _value(value):
    """A param's value as a ruamel node: models as block mappings, lists in flow style."""
    if isinstance(value, BaseModel):
        return _mapping(value)
    if isinstance(value, tuple | list):
        seq = CommentedSeq(_value(v) for v in value)
        seq.fa.set_flow_style()
        return seq
    if isinstance(value, dict):  # datasets: name -> its entry, only the keys it sets
        return CommentedMap((name, _entry(entry)) for name, entry in value.items())
    return value


def _entry(dataset: DatasetConfig) -> CommentedMap:
    entry = CommentedMap(dataset.model_dump(exclude_defaults=True))
    entry.fa.set_flow_style()
    return entry


def _mapping(model: BaseModel) -> CommentedMap:
    node = CommentedMap()
    for name, field in type(model).model_fields.items():
        node[name] = _value(getattr(model, name))
        if field.description:
            node.yaml_add_eol_comment(field.description, name, column=COMMENT_COLUMN)
    return node


def _null(representer, _):
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


def params_yaml(params: Params, header: str = "") -> str:
    """`params` as the text of a params.yaml, `header` as a comment block above it."""
    node = _mapping(params)
    if header:
        node.yaml_set_start_comment(header)
    yaml = YAML()
    yaml.width = 4096  # one line per key, as the comparison of comments reads them
    yaml.representer.add_representer(type(None), _null)  # `null`, not an empty value
    out = StringIO()
    yaml.dump(node, out)
    return out.getvalue()

"""A bad params value as one line: `params.yaml: <dotted.key> = <value>; allowed: <allowed>`.

pydantic finds the error (type, range, choice, unknown or missing key, a model's own rule);
this turns the first one into our line, reading what is allowed from the model's own types
and bounds, so a message can never disagree with the check behind it.
"""

from __future__ import annotations

import reprlib
import types
import typing
from pathlib import Path
from typing import Annotated, Literal, get_args, get_origin

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError
from ruamel.yaml import YAML, YAMLError
from ruamel.yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    MappingStartEvent,
    ScalarEvent,
)

from simclr.errors import PipelineError, single_line

MAX_DEPTH = 10  # params.yaml nests 4 deep; ruamel builds a tree recursively, one call per level
MAX_SHOWN = 200  # characters of a value in a message


def rule(loc: tuple, rest: str) -> PydanticCustomError:
    """A broken rule of a model's own, at `loc` below it; `rest` follows the key."""
    return PydanticCustomError("params", "{rest}", {"loc": loc, "rest": rest})


def fail(loc: tuple, value, allowed: str) -> PydanticCustomError:
    return rule(loc, f" = {show(value)}; allowed: {allowed}")


def relay(loc: tuple, model: type[BaseModel], error: ValidationError) -> PydanticCustomError:
    """`error`, raised validating a `model` for the key at `loc`, as a rule broken there."""
    inner, rest = _parts(model, error.errors(include_url=False)[0])
    return rule((*loc, *inner), rest)


def one_line(
    model: type[BaseModel], error: ValidationError, prefix: str = "", source: str = "params.yaml"
) -> str:
    """The first error of validating a `model` (keys below `prefix`) as one line; `source`
    names the file the data came from."""
    err = error.errors(include_url=False)[0]
    if err["type"] in ("extra_forbidden", "invalid_key"):  # invalid: not a string
        fields = sorted(_type_at(model, err["loc"][:-1])[0].model_fields)
        key = _dotted(prefix, err["loc"])
        return f"{source}: unknown key {key!r}; allowed: {', '.join(fields)}"
    loc, rest = _parts(model, err)
    return f"{source}: {_dotted(prefix, loc) or 'top level'}{rest}"


def _parts(model: type[BaseModel], err: dict) -> tuple[tuple, str]:
    """The key's location and what follows the key in the message."""
    loc, ctx = tuple(err["loc"]), err.get("ctx") or {}
    if err["type"] == "params":
        return loc + tuple(ctx["loc"]), ctx["rest"]
    tp, meta = _type_at(model, loc)
    allowed = describe(tp, meta) if tp is not None else err["msg"]
    if err["type"] == "missing":
        return loc, f" is required; allowed: {allowed}"
    return loc, f" = {show(err['input'])}; allowed: {allowed}"


def _dotted(prefix: str, loc: tuple) -> str:
    key = prefix
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else f".{part}" if key else str(part)
    return key


def _type_at(model: type[BaseModel], loc: tuple) -> tuple[object, list]:
    """The annotation and constraints of the value at `loc` in `model` (None: no such key)."""
    tp, meta = model, []
    for part in loc:
        tp, meta, _ = _unwrap(tp, meta)
        if _is_model(tp):
            info = tp.model_fields.get(part)
            if info is None:  # not a key of the model: nothing to describe
                return None, []
            tp, meta = info.annotation, list(info.metadata)
        else:  # a dict's value, or a tuple's item
            args = get_args(tp)
            if get_origin(tp) is dict:
                tp = args[-1]
            else:
                tp = args[0] if args[-1] is Ellipsis else args[part]
            meta = []
    return tp, meta


def _unwrap(tp, meta: list) -> tuple[object, list, bool]:
    """`tp` without Annotated and Optional; its constraints; whether null is allowed."""
    meta, nullable = list(meta), False
    while True:
        args = get_args(tp)
        if get_origin(tp) is Annotated:
            tp, meta = args[0], [*meta, *args[1:]]
        elif get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
            (tp,) = [a for a in args if a is not type(None)]
            nullable = True
        else:
            break
    flat = [m for x in meta for m in (x.metadata if isinstance(x, FieldInfo) else [x])]
    return tp, flat, nullable


def _is_model(tp) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def describe(tp, meta: list | tuple = (), plural: bool = False) -> str:
    """What a value of type `tp` may be, in words: "a finite number > 0", "null, 1, 3"."""
    tp, meta, nullable = _unwrap(tp, list(meta))
    origin, args = get_origin(tp), get_args(tp)
    some = "a non-empty " if any(getattr(m, "min_length", 0) for m in meta) else "a "
    if origin is Literal:
        text = ", ".join(map(str, args))
        return f"null, {text}" if nullable else text
    if _is_model(tp):
        text = f"a mapping of {', '.join(tp.model_fields)}"
    elif origin is dict:
        text = f"{some}mapping of names to settings"
    elif origin is tuple:
        size = "" if args[-1] is Ellipsis else f"{len(args)} "
        text = f"{some}list of {size}{describe(args[0], plural=True)}"
    elif tp is bool:
        text = "true or false"
    elif tp is str:
        text = "strings" if plural else f"{some}string"
    else:
        finite = any(getattr(m, "allow_inf_nan", True) is False for m in meta)
        noun = "integer" if tp is int else "finite number" if finite else "number"
        text = (f"{noun}s" if plural else f"a{'n' * (noun[0] == 'i')} {noun}") + _bounds(meta)
    return f"null or {text}" if nullable else text


def _bounds(meta: list) -> str:
    """ " in (0, 1]", " >= 2", "" from the constraints gt, ge, lt, le."""
    got = {k: getattr(m, k) for m in meta for k in ("gt", "ge", "lt", "le") if hasattr(m, k)}
    low = ("(", got["gt"]) if "gt" in got else ("[", got["ge"]) if "ge" in got else None
    high = (")", got["lt"]) if "lt" in got else ("]", got["le"]) if "le" in got else None
    if low and high:
        return f" in {low[0]}{low[1]}, {high[1]}{high[0]}"
    if low:
        return f" {'>' if low[0] == '(' else '>='} {low[1]}"
    if high:
        return f" {'<' if high[0] == ')' else '<='} {high[1]}"
    return ""


class _Short(reprlib.Repr):
    """A value as YAML writes it (null, true, lists), cut short at every level: an alias bomb
    or a huge string costs little and stays a short line."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict = 3, 8, 8
        self.maxstring = self.maxother = 100

    def repr_tuple(self, x, level) -> str:
        return self.repr_list(x, level)

    def repr_bool(self, x, level) -> str:
        return "true" if x else "false"

    def repr_NoneType(self, x, level) -> str:  # noqa: N802 (reprlib's naming)
        return "null"


def show(value) -> str:
    text = _Short().repr(value)
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 3] + "..."


def read_yaml(path: Path):
    """params.yaml's data; a file that is not UTF-8, not YAML or nested absurdly deep is a
    one-line PipelineError."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise PipelineError(
            f"{path}: not UTF-8 text (byte {e.object[e.start]:#04x} at offset {e.start}); "
            "save it as UTF-8"
        ) from None
    # ruamel (YAML 1.2), as DVC reads and writes params: `-S lr=1e-4` stays a number.
    yaml = YAML(typ="safe", pure=True)
    try:
        _check_depth(yaml.parse(text))
        return yaml.load(text)
    except YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        problem = " ".join(str(getattr(e, "problem", None) or "syntax error").split())
        raise PipelineError(f"{path}: not valid YAML{where}: {problem}; fix the syntax") from None
    except (ValueError, TypeError) as e:  # building values: a 5000-digit integer, a list as key
        raise PipelineError(
            f"{path}: cannot read a value ({single_line(str(e), MAX_SHOWN)}); fix it"
        ) from None


def _check_depth(events) -> None:
    """Refuse a value nested deeper than MAX_DEPTH, from the parser's flat stream of events,
    before ruamel builds the tree: one line naming the key, never a RecursionError."""
    stack = []  # per open collection: [a mapping?, is its next node a key?, its current key]
    for event in events:
        if isinstance(event, CollectionEndEvent):
            stack.pop()
            continue
        if not isinstance(event, ScalarEvent | AliasEvent | CollectionStartEvent):
            continue
        if stack and stack[-1][0]:  # in a mapping, keys and values alternate
            if stack[-1][1] and isinstance(event, ScalarEvent):
                stack[-1][2] = event.value
            stack[-1][1] = not stack[-1][1]
        if isinstance(event, CollectionStartEvent):
            stack.append([isinstance(event, MappingStartEvent), True, None])
            if len(stack) > MAX_DEPTH:
                key = ".".join(str(s[2]) for s in stack[:-1] if s[0] and s[2] is not None)
                raise PipelineError(
                    f"params.yaml: {key or 'top level'} is nested more than {MAX_DEPTH} levels "
                    f"deep (line {event.start_mark.line + 1}); no param nests deeper than 4"
                )

"""The docs do not rot: in README.md, CHANGELOG.md, ARCHITECTURE.md, docs/*.md and
benchmarks/README.md every relative link and #anchor resolves (GitHub's heading slugs), every
`simclr …` and `python -m …` command shown exists with the options shown, and every params key
named (a dotted key in backticks, `-S key=value`, `--grid key=…`) exists in the params models.
Every repository file named in backticks (`simclr/io.py`, `tests/…`) exists. The README's
results table is the committed reports/summary.json's.

In-process and fast: modules are found with importlib, and a command's options are read from
the argparse parser its code builds, caught at its parse call, so no command runs."""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import re
import shlex
import sys
import typing
from pathlib import Path
from unittest import mock

import pytest
from helpers import ROOT
from pydantic import BaseModel

from simclr.config import Params

DOCS = sorted(
    [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "ARCHITECTURE.md"]
    + list((ROOT / "docs").glob("*.md"))
    + [ROOT / "benchmarks" / "README.md"]
)
IDS = [p.relative_to(ROOT).as_posix() for p in DOCS]

FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.M | re.S)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
SPAN = re.compile(r"`([^`]+)`")
HEADING = re.compile(r"^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$", re.M)
DOTTED = re.compile(r"[a-z_]+(?:\.[a-z0-9_]+)+")
OVERRIDE = re.compile(r"(?:-S|--grid)\s+['\"]?\+{0,2}([A-Za-z_][\w.]*)=")
SEPARATORS = {"&&", "||", ";", "|", "&"}
# A path in backticks under one of these is the repository's own file (outputs are not checked:
# most are made by a run and not committed).
CODE_DIRS = ("simclr", "tasks", "flows", "tests", "benchmarks", "tools", "deploy", "docs", ".ci")
CODE_PATH = re.compile(rf"(?:{'|'.join(re.escape(d) for d in CODE_DIRS)})/[\w./-]*\w")


def prose(text: str) -> str:
    """The text without its fenced code blocks (links and headings in them are not links)."""
    return FENCE.sub("", text)


def code(text: str) -> list[str]:
    """Every piece of code the text shows: each line of a fenced block (continuations joined)
    and each inline code span."""
    pieces = []
    for block in FENCE.finditer(text):
        body = block.group(0).split("\n", 1)[1].rsplit("\n", 1)[0]
        pieces += body.replace("\\\n", " ").splitlines()
    return pieces + [" ".join(s.split()) for s in SPAN.findall(prose(text))]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: its rendered text lower-cased, every character but letters,
    digits, spaces, hyphens and underscores dropped, spaces made hyphens."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"[`*]|(?<!\w)_|_(?!\w)", "", text).strip().lower()  # code and emphasis marks
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings; a repeated heading gets -1, -2, ... as on
    GitHub."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(prose(path.read_text())):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    """The relative links and anchors of a file (web and mail links are not ours to check)."""
    found = LINK.findall(prose(path.read_text()))
    return [t for t in found if not re.match(r"[a-z][a-z0-9+.-]*:", t)]


def broken_link(doc: Path, target: str) -> str | None:
    """Why `target`, a link in `doc`, does not resolve; None when it does."""
    where, _, anchor = target.partition("#")
    file = (doc.parent / where).resolve() if where else doc
    if not file.exists():
        return (
            f"{target}: {file.relative_to(ROOT) if file.is_relative_to(ROOT) else file} is missing"
        )
    if anchor and file.suffix == ".md" and anchor not in anchors(file):
        return f"{target}: no heading with the anchor #{anchor} in {file.relative_to(ROOT)}"
    return None


def commands(text: str) -> list[tuple[str, list[str]]]:
    """Every command the text shows as ("simclr <sub>" or a module run with -m, its arguments).
    A command starts a shell segment (after VAR=value assignments) as `simclr`, or is a Python
    run with `-m MODULE`; a later `-m MODULE` in the same segment (torchrun's) starts another."""
    found = []
    for piece in code(text):
        try:
            tokens = shlex.split(piece, comments=True)
        except ValueError:  # an unbalanced quote in prose-like code: words are enough
            tokens = piece.split()
        segment: list[str] = []
        for token in [*tokens, ";"]:
            if token not in SEPARATORS:
                segment.append(token)
                continue
            found += _segment_commands(segment)
            segment = []
    return found


def _segment_commands(words: list[str]) -> list[tuple[str, list[str]]]:
    while words and re.match(r"[A-Z_]+=", words[0]):
        words = words[1:]
    if len(words) >= 2 and words[0] == "simclr":
        return [(f"simclr {words[1]}", words[2:])]
    if not words or not re.search(r"python3?$", words[0]):
        return []
    found = []
    for i, word in enumerate(words):
        if word == "-m" and i + 1 < len(words):
            found.append((words[i + 1], []))
        elif found:
            found[-1][1].append(word)
    return found


def options(args: list[str]) -> list[str]:
    """The long options among a command's arguments (`[--cron X]` is an optional --cron)."""
    names = [a.strip("[]").split("=")[0] for a in args]
    return [n for n in names if re.fullmatch(r"--[a-z][a-z0-9-]*", n)]


class _Parsed(BaseException):  # not an Exception: passes the entry points' error boundary
    def __init__(self, parser: argparse.ArgumentParser, strict: bool):
        super().__init__(parser.prog)
        self.parser, self.strict = parser, strict


def _caught(call: typing.Callable[[], object]) -> _Parsed | None:
    """The parser `call` builds, caught where it would parse: (parser, whether options it does
    not know are refused); None if it parses nothing."""

    def parse(strict: bool):
        def raise_parsed(self, *args, **kwargs):
            raise _Parsed(self, strict)

        return raise_parsed

    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", parse(True)),
        mock.patch.object(argparse.ArgumentParser, "parse_known_args", parse(False)),
        mock.patch.object(argparse.ArgumentParser, "parse_intermixed_args", parse(True)),
    ):
        try:
            call()
        except _Parsed as parsed:
            return parsed
    return None


def _subcommand(parsed: _Parsed, name: str) -> _Parsed | None:
    for action in parsed.parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return _Parsed(action.choices[name], parsed.strict)
    return None


def simclr_parser(sub: str) -> _Parsed | None:
    """The parser of `simclr <sub>`, None if the console has no such command."""
    console = importlib.import_module("flows.console")
    table = getattr(console, "COMMANDS", None)
    if table is not None:  # the console's own dispatcher: name -> (handler(argv, prog), about)
        if sub not in table:
            return None
        return _caught(lambda: table[sub][0]([], f"simclr {sub}"))
    top = _caught(lambda: console.main([sub]))  # argparse subparsers
    return None if top is None else _subcommand(top, sub)


def module_parser(name: str) -> _Parsed | None:
    """The parser `python -m <name>` builds: its get_args_parser() where it has one (torchrun),
    else the one its main(argv) builds, where its source builds one; None otherwise."""
    module = importlib.import_module(name)
    if hasattr(module, "get_args_parser"):
        return _Parsed(module.get_args_parser(), True)
    source = Path(module.__file__ or "").read_text() if module.__file__ else ""
    if "ArgumentParser" not in source or not hasattr(module, "main"):
        return None
    if inspect.signature(module.main).parameters:
        return _caught(lambda: module.main([]))
    with mock.patch.object(sys, "argv", [name]):  # a main() that reads sys.argv itself
        return _caught(module.main)


def missing_command(name: str, args: list[str]) -> str | None:
    """Why the command `name args` shown in a doc does not exist as shown; None if it does.
    Modules are looked up as `python -m` run in the repository root finds them (`benchmarks`
    is no installed package)."""
    with mock.patch.object(sys, "path", [str(ROOT), *sys.path]):
        return _missing_command(name, args)


def _missing_command(name: str, args: list[str]) -> str | None:
    wanted = options(args)
    if name.startswith("simclr "):
        sub = name.split()[1]
        if sub in ("-h", "--help", "--version"):
            return None
        parsed = simclr_parser(sub)
        if parsed is None:
            return f"{name}: no such command in flows/console.py"
    else:
        if importlib.util.find_spec(name) is None:
            return f"python -m {name}: no module {name}"
        if not wanted:
            return None
        parsed = module_parser(name)
        if parsed is None:
            return f"python -m {name}: options {wanted} shown, but it builds no argparse parser"
    known = set(parsed.parser._option_string_actions)
    unknown = [o for o in wanted if o not in known]
    if unknown and parsed.strict:
        return f"{name}: no option {', '.join(unknown)} (it has {', '.join(sorted(known))})"
    return None


def placeholder(name: str) -> bool:
    """`simclr COMMAND`, `python -m flows.<stage>`, `simclr …`: a pattern, not one command."""
    return any(c in name for c in "<…") or "..." in name or name.split()[-1].isupper()


def _model_in(annotation) -> tuple[str, type[BaseModel]] | None:
    """("model", M) for a field holding a model M, ("dict", M) for one mapping names to M."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "model", annotation
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) is dict and len(args) == 2:
        inner = _model_in(args[1])
        return None if inner is None else ("dict", inner[1])
    for arg in args:
        inner = _model_in(arg)
        if inner is not None:
            return inner
    return None


def is_param(key: str, model: type[BaseModel] = Params) -> bool:
    """Whether the dotted key names a param (or a section of them) in the params models;
    a name under a mapping of them (`datasets.<name>.root`) may be any name."""
    first, _, rest = key.partition(".")
    field = model.model_fields.get(first)
    if field is None:
        return False
    inner = _model_in(field.annotation)
    if inner is None or not rest:
        return not rest
    kind, sub = inner
    if kind == "dict":
        rest = rest.partition(".")[2]
        if not rest:
            return True
    return is_param(rest, sub)


def params_keys(text: str) -> list[str]:
    """The params keys a text names: dotted keys in backticks whose first part is a params
    section, and every key set with `-S key=value` or `--grid key=…` (`key` itself is a
    placeholder)."""
    sections = set(Params.model_fields)
    spans = [s for s in SPAN.findall(prose(text)) if DOTTED.fullmatch(s)]
    keys = [s for s in spans if s.split(".")[0] in sections]
    overrides = [k for piece in code(text) for k in OVERRIDE.findall(piece)]
    return keys + [k for k in overrides if k != "key"]


def code_paths(text: str) -> list[str]:
    """The repository files and folders a text names in backticks (`tests/x.py::test_y` names
    tests/x.py; `flows/<stage>.py` is a pattern)."""
    spans = [s.split("::")[0] for s in SPAN.findall(prose(text))]
    return [s for s in spans if CODE_PATH.fullmatch(s)]


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_code_path_named_exists(doc):
    missing = sorted({p for p in code_paths(doc.read_text()) if not (ROOT / p).exists()})
    assert not missing, f"{doc.relative_to(ROOT)}: no such file in the repository: {missing}"


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_relative_link_and_anchor_resolves(doc):
    broken = sorted({why for t in links(doc) if (why := broken_link(doc, t))})
    assert not broken, f"{doc.relative_to(ROOT)}: " + "; ".join(broken)


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_command_shown_exists_with_its_options(doc):
    shown = [(n, a) for n, a in commands(doc.read_text()) if not placeholder(n)]
    missing = sorted({why for n, a in shown if (why := missing_command(n, a))})
    assert not missing, f"{doc.relative_to(ROOT)}: " + "; ".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=IDS)
def test_every_params_key_named_exists(doc):
    unknown = sorted({k for k in params_keys(doc.read_text()) if not is_param(k)})
    assert not unknown, f"{doc.relative_to(ROOT)}: no such params key: {', '.join(unknown)}"


def test_the_checks_catch_what_they_are_for():
    doc = ROOT / "README.md"
    assert broken_link(doc, "docs/nowhere.md") and broken_link(doc, "#no-such-heading")
    assert slug("Evaluation (the `evaluate` stage and every `transfer@<dataset>`)") == (
        "evaluation-the-evaluate-stage-and-every-transferdataset"
    )
    assert slug("Reproducing someone else's results") == "reproducing-someone-elses-results"
    assert missing_command("simclr frobnicate", [])
    assert missing_command("simclr init", ["photos", "--minuets", "30"])
    assert missing_command("flows.nowhere", [])
    assert missing_command("flows.compare", ["--baseline", "main", "--colour"])
    assert not missing_command("flows.compare", ["--baseline", "main"])
    assert not missing_command("simclr run", ["-s", "pretrain", "--force"])  # dvc repro's options
    assert is_param("pretrain.distributed.nproc_per_node") and is_param("datasets.pets.root")
    assert not is_param("pretrain.temprature") and not is_param("pretrain.epochs.x")
    text = "`python -m flows.sweep --grid pretrain.tau=0.1` and\n```bash\nsimclr embed a b\n```\n"
    assert params_keys(text) == ["pretrain.tau"]
    assert code_paths("`tests/test_io.py::test_x`, `simclr/<x>.py`, `reports/a.json`") == [
        "tests/test_io.py"
    ]
    assert sorted(n for n, _ in commands(text)) == ["flows.sweep", "simclr embed"]


RESULTS_START = "<!-- results table:"
RESULTS_END = "<!-- end of results table -->"
PROTOCOLS = {"linear": "linear", "knn": "kNN", "finetune": "fine-tune"}
METHODS = {"simclr": "SimCLR", "random_init": "random", "raw_pixels": "pixels"}


def results_table(summary: dict) -> str:
    """The README's results table from summary.json: mean ± std of every protocol, method and
    label fraction; the best of each protocol in bold."""
    first = next(iter(summary["datasets"].values()))
    columns = [(p, m) for p in PROTOCOLS for m in METHODS if m in first.get(p, {})]
    head = ["dataset", "labels"] + [f"{PROTOCOLS[p]} {METHODS[m]}" for p, m in columns]
    rows = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, data in summary["datasets"].items():
        for fraction in data["linear"]["simclr"]:
            cells = {(p, m): data[p][m][fraction] for p, m in columns}
            shown = {
                k: (round(c["mean"], 3), f"{c['mean']:.3f} ± {c['std']:.3f}")
                for k, c in cells.items()
            }
            best = {p: max(v[0] for (q, _), v in shown.items() if q == p) for p in PROTOCOLS}
            text = [f"**{s}**" if v == best[p] else s for (p, _), (v, s) in shown.items()]
            label = f"{float(fraction) * 100:g}%"
            rows.append(f"| {name} ({data['role']}) | {label} | " + " | ".join(text) + " |")
    return "\n".join(rows)


def test_the_readme_results_table_is_the_committed_summary():
    readme = (ROOT / "README.md").read_text()
    block = readme.split(RESULTS_START, 1)[1].split("\n", 1)[1].split(RESULTS_END, 1)[0]
    expected = results_table(json.loads((ROOT / "reports" / "summary.json").read_text()))
    assert block.strip() == expected, f"paste into README.md's results table:\n{expected}"

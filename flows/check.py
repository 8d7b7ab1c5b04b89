"""`python -m flows.check`: validate params.yaml before a run and, with PREFECT_API_URL set,
that the Prefect API answers (one line on error, exit 2)."""

import sys
from pathlib import Path

from flows.cli import PARAMS, boundary, check_api
from simclr.config import load_params
from simclr.config_errors import read_yaml
from simclr.errors import PipelineError
from tasks.params_checks import check_params

DVC_YAML = "dvc.yaml"


def declared_params(dvc_yaml: Path) -> list[str]:
    """The params.yaml keys that dvc.yaml's stages declare (`params:`), in order, each cut
    before its first `${...}` part (`datasets.${key}` -> `datasets`)."""
    stages = (read_yaml(dvc_yaml) or {}).get("stages") or {}
    keys = []
    for stage in stages.values():
        for entry in stage.get("params") or []:
            if isinstance(entry, str):  # a mapping names another params file
                parts = entry.split(".")
                cut = next((i for i, p in enumerate(parts) if "${" in p), len(parts))
                keys += [".".join(parts[:cut])] if cut else []
    return list(dict.fromkeys(keys))


def missing_params(raw, declared: list[str]) -> list[str]:
    """The declared keys that `raw` (params.yaml's data) lacks, each as its shortest missing
    part: the schema fills a missing key with its default, but `dvc repro` stops on it."""
    missing = []
    for key in declared:
        node, path = raw, []
        for part in key.split("."):
            path.append(part)
            if not isinstance(node, dict) or part not in node:
                missing.append(".".join(path))
                break
            node = node[part]
    return list(dict.fromkeys(missing))


@boundary()
def main() -> None:
    params = load_params(PARAMS)
    if Path(DVC_YAML).is_file():
        missing = missing_params(read_yaml(Path(PARAMS)), declared_params(Path(DVC_YAML)))
        if missing:
            raise PipelineError(
                f"{PARAMS}: missing {', '.join(missing)}, which {DVC_YAML}'s stages declare as "
                "params (dvc repro stops without them); add them, e.g. copied from the params.yaml "
                "that comes with the pipeline (it lists every key with its default)"
            )
    warnings = check_params(params)
    check_api()  # the stages would fail on a dead API only once they start
    for line in warnings:
        print(f"warning: {line}", file=sys.stderr)
    print(f"{PARAMS}: ok")


if __name__ == "__main__":
    main()

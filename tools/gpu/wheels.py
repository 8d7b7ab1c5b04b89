"""Which wheels a bare H200 device machine needs for the GPU checks: the packages a group of
ours needs (with everything they need in turn) that the machine's image does not hold, pinned to
the versions installed here, one `name==version` a line.

    python -m tools.gpu.wheels library|lightly|pipeline [--missing DIR]

`library` is what `simclr/` imports that the image lacks (pydantic, ruamel.yaml); `lightly` the
reference of benchmarks.cpu.pretrain_throughput; `pipeline` the stages around the library
(prefect, dvc, dvclive, great-expectations). lightly and pipeline leave out what library carries:
each check installs library and one of the two.
tools/gpu/prepare.sh downloads them for Python 3.12 manylinux x86-64.
"""

from __future__ import annotations

import argparse
import re
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

# The device image's Python packages (the lending service's machine notes, read 2026-11-17).
# typing-extensions is carried anyway: pydantic 2.14 needs >= 4.16, the image's is not known.
_DEVICE_PACKAGES = """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx huggingface-hub humanize
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
    jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator
    lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
    mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx
    ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc
    nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand
    nvidia-cusolver nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13
    nvidia-nvjitlink nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
    pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
    psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
    scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
    shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
    torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
    treescope triton typer typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt
    xarray xxhash yarl zipp"""
ON_DEVICE = frozenset(_DEVICE_PACKAGES.split())
GROUPS = {
    "library": ["pydantic", "ruamel.yaml", "typing-extensions"],
    "lightly": ["lightly"],
    "pipeline": ["prefect", "dvc", "dvclive", "great-expectations"],
}
TARGET = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux"}


def norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def closure(roots: list[str]) -> dict[str, str]:
    """Every installed distribution `roots` need on Python 3.12 Linux, the extras they ask
    of each other included, by normalised name, with the version installed here."""
    found: dict[str, str] = {}
    done: set[tuple[str, str]] = set()
    todo = [(norm(r), "") for r in roots]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in done:
            continue
        done.add((name, extra))
        try:
            dist = distribution(name)
        except PackageNotFoundError:
            continue  # a need of another platform or Python that pip did not install here
        found[name] = dist.version
        for line in dist.requires or []:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({**TARGET, "extra": extra}):
                todo += [(norm(req.name), e) for e in ("", *req.extras)]
    return found


def wheels(group: str) -> dict[str, str]:
    """The group's pins, without what the device has or the library group already carries
    (every check carries the library group; lightly and pipeline never travel together)."""
    library = set() if group == "library" else wheels("library").keys()
    return {k: v for k, v in closure(GROUPS[group]).items() if k not in ON_DEVICE | library}


def missing(pins: dict[str, str], folder: Path) -> dict[str, str]:
    """The pins with no wheel of that version in `folder` yet."""
    have = {(norm(w.name.split("-")[0]), w.name.split("-")[1]) for w in folder.glob("*.whl")}
    return {k: v for k, v in pins.items() if (k, v) not in have}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("group", choices=list(GROUPS))
    p.add_argument("--missing", type=Path, help="only the pins with no wheel in this folder")
    args = p.parse_args(argv)
    pins = wheels(args.group)
    if args.missing is not None:
        pins = missing(pins, args.missing)
    for name, version in sorted(pins.items()):
        print(f"{name}=={version}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

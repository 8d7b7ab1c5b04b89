"""Helpers the tests share (tests import this module, never each other): paths, tiny params and
data, real Git/DVC repositories and stage commands in temporary directories."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from pydantic import BaseModel

from tasks.paths import RUN, pretrain_dir

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
GUARD_DIR = ROOT / "tests" / "guard"  # the suite's guard against tracebacks (conftest.py)
sys.path.insert(0, str(GUARD_DIR))  # `import unexpected_guard` in the tests


def pythonpath(*folders: Path) -> str:
    """PYTHONPATH for a command a test starts: `folders` first, then the suite's guard."""
    return os.pathsep.join(str(f) for f in (*folders, GUARD_DIR))


# The whole pipeline in about a minute: 8 px images, 12 per class, 2 epochs, 2 replicas.
TINY_PARAMS = """\
seed: 0
replicas: [0, 1]
data: {image_size: 8, test_fraction: 0.25, max_per_class: 12}
datasets:
  digits: {source: digits}
  faces: {source: faces}
validate: {min_rows: 20, max_rows: 1000}
model: {widths: [8, 16], blocks: [1, 1], proj_hidden_dim: 16, proj_dim: 8}
pretrain:
  dataset: digits
  epochs: 2
  batch_size: 32
  warmup_epochs: 1
  device: cpu
  precision: auto
  knn_every: 1
  augment: {crop_scale: [0.3, 1.0], flip_p: 0.0}
evaluate:
  fractions: [0.1, 1.0]
  seeds: 2
  knn_k: 5                # faces keeps 18 training images here: k may not exceed them
  finetune: {epochs: 1, min_steps: 2, max_steps: 4}
transfer: {datasets: [faces]}
"""


def repo_env(**extra: str) -> dict[str, str]:
    """The environment of a command run in a test repository: the venv's tools first on PATH,
    a git identity, and `extra`."""
    return {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "GIT_AUTHOR_NAME": "test",
        "GIT_AUTHOR_EMAIL": "test@localhost",
        "GIT_COMMITTER_NAME": "test",
        "GIT_COMMITTER_EMAIL": "test@localhost",
        **extra,
    }


def runner(path: Path, env: dict[str, str], timeout: float = 300):
    """run(*cmd, check=True) in `path`: the CompletedProcess; a failure fails the test with
    the command's output."""

    def run(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        r = subprocess.run(cmd, cwd=path, env=env, capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            pytest.fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
        return r

    return run


def init_repo(run) -> None:
    """A Git repository with DVC and one commit of everything in it (DVCLive needs a commit)."""
    run("git", "init", "-q")
    run("dvc", "init", "-q")
    run("git", "add", "-A")
    run("git", "commit", "-qm", "initial")


PHOTOS = "  photos: {source: imagefolder, root: /data/photos}\n"


def rgb_params_with(transfer: str, extra: str = "") -> str:
    """TINY_PARAMS pretraining on an RGB image folder, `transfer` its transfer set."""
    text = TINY_PARAMS.replace("datasets:\n", f"datasets:\n{PHOTOS}{extra}", 1)
    text = text.replace("  dataset: digits\n", "  dataset: photos\n")
    return text.replace("transfer: {datasets: [faces]}", f"transfer: {{datasets: [{transfer}]}}")


def tiny_prepared(n_train: int = 60, n_test: int = 30, classes: int = 3, seed: int = 0):
    """A Prepared dataset of 8x8 grayscale images whose class is the bright quadrant: learnable
    from the pixels, so probes have something to find."""
    from simclr.data.prepared import Prepared, Split

    rng = np.random.default_rng(seed)

    def split(n):
        y = np.arange(n) % classes
        x = rng.integers(0, 60, (n, 8, 8, 1))
        for i, c in enumerate(y):
            x[i, (c // 2) * 4 : (c // 2) * 4 + 4, (c % 2) * 4 : (c % 2) * 4 + 4] += 150
        return Split(x.astype(np.uint8), y.astype(np.int64))

    return Prepared(split(n_train), split(n_test), tuple(f"class {i}" for i in range(classes)))


def copy_code(path: Path) -> Path:
    """The pipeline's packages copied into `path`, to run the stages there for real."""
    for name in ("simclr", "tasks", "flows"):
        shutil.copytree(ROOT / name, path / name, ignore=shutil.ignore_patterns("__pycache__"))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None, tries: int = 5):
    """One request to the Prefect server's REST API, the JSON it answers. A 503 is retried, as
    Prefect's own client does: the server sends it for errors a client can retry on (its
    SQLite database busy, on a loaded machine)."""
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(
        url + path, data=data, headers={"Content-Type": "application/json"}
    )
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code != 503 or attempt == tries - 1:
                raise
            time.sleep(2**attempt)


def pretrain_stage(
    cwd: Path, env: dict, new_session: bool = False, replica: int | None = None
) -> subprocess.Popen:
    """The real pretrain stage command (of `replica`; None: the command without one, the first
    replica), running; `new_session` puts it (and what it starts) in a process group of its
    own, for a kill of the whole group."""
    return subprocess.Popen(
        [sys.executable, "-m", "flows.pretrain", *([] if replica is None else [str(replica)])],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=new_session,
    )


def checkpoint_weights(path: Path) -> dict:
    """Every tensor of a checkpoint's encoder and head, by dotted name."""
    import torch

    state = torch.load(path, weights_only=True)
    return {
        **{f"encoder.{k}": v for k, v in state["encoder"].items()},
        **{f"head.{k}": v for k, v in state["head"].items()},
    }


def pretrain_run(cwd: Path, replica: int = 0) -> dict:
    """What the pretrain stage of `replica` in `cwd` recorded beside its checkpoint: timings,
    the epoch it resumed after, provenance."""
    return json.loads((cwd / pretrain_dir(replica) / RUN).read_text())


def saved_epochs(resume_dir: Path) -> int:
    """Epochs in the resumable state under `resume_dir` (0 if none yet)."""
    import torch

    states = list(resume_dir.glob("pretrain-*.pt"))
    try:
        return len(torch.load(states[0], weights_only=True)["history"]) if states else 0
    except (OSError, RuntimeError, EOFError):  # replaced while we read it
        return 0


# Pretraining in-process in a second: a two-stage ResNet on 8x8 noise, two epochs.
MODEL = dict(widths=(8, 16), blocks=(1, 1), proj_hidden_dim=16, proj_dim=8)  # build_model's


def tiny_images(n: int = 64, size: int = 8):
    """`n` random uint8 grayscale images, NHWC."""
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 1), dtype=np.uint8)


def cfg(**kw):
    """A pretraining Recipe for tiny_images on the CPU, with `kw` changed."""
    from simclr.train import Recipe  # torch: only for the tests that pretrain

    base = dict(
        epochs=2,
        batch_size=32,
        optimizer="lars",
        lr=0.3,
        warmup_epochs=1,
        device="cpu",
        channels_last=False,
        knn_every=0,
        augment={"crop_scale": (0.3, 1.0)},
    )
    return Recipe(**{**base, **kw})


# The pretrain stage's params for the kill-and-resume tests: slow enough (12 epochs) to be
# killed after a few, quick enough to run twice.
RESUME_PARAMS = """\
seed: 0
replicas: [0, 1]
data: {image_size: 8, test_fraction: 0.2, max_per_class: 60}
datasets: {digits: {source: digits}}
model: {widths: [16, 32], blocks: [1, 1], proj_hidden_dim: 32, proj_dim: 16}
pretrain:
  dataset: digits
  epochs: 12
  batch_size: 96
  warmup_epochs: 1
  device: cpu
  threads: 2
  knn_every: 4
  augment: {crop_scale: [0.3, 1.0], flip_p: 0.0}
transfer: {datasets: []}
"""


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


# The browser tests' own check, added to a copy of the page they open (the product page has no
# script at all): once loaded, the body's data-images says "decoded/total", data-broken which not.
IMAGE_CHECK = """<script>
// Marks the page once loaded: how many images decoded, which did not (by their alt text).
window.addEventListener("load", () => {
  const imgs = [...document.images];
  const bad = imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt);
  document.body.dataset.images = `${imgs.length - bad.length}/${imgs.length}`;
  document.body.dataset.broken = bad.join("|");
});
</script>"""


def require_chromium() -> None:
    """At a browser test module's top: skip it without Chromium, except in CI (.ci/run sets
    REQUIRE_CHROMIUM), where a missing browser must fail rather than skip silently."""
    if CHROMIUM is None:
        if os.environ.get("REQUIRE_CHROMIUM"):
            raise RuntimeError("chromium is not installed; .ci/run installs Debian's package")
        pytest.skip("chromium not installed (apt-get install chromium)", allow_module_level=True)


def open_page(
    html: Path, screenshot: Path | None = None, check_images: bool = False
) -> tuple[str, list[str]]:
    """(the DOM after load, console errors) of `html` in headless Chromium. With `check_images`,
    a copy of a self-contained page with IMAGE_CHECK appended is opened instead: the script
    the page's parser meets last, after everything the page itself holds."""
    if check_images:
        with tempfile.TemporaryDirectory(prefix="checked-page-") as folder:
            copy = Path(folder) / html.name
            copy.write_text(html.read_text() + IMAGE_CHECK)
            return open_page(copy, screenshot)
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=10000",
    ]
    r = subprocess.run(
        [*base, "--dump-dom", html.as_uri()], capture_output=True, text=True, timeout=120
    )
    assert r.returncode == 0, r.stderr[-2000:]
    errors = [
        line
        for line in r.stderr.splitlines()
        if "CONSOLE" in line and re.search(r"Uncaught|Error|error|Failed", line)
    ]
    if screenshot is not None:
        subprocess.run(
            [*base, f"--screenshot={screenshot}", "--window-size=1200,5000", html.as_uri()],
            capture_output=True,
            timeout=120,
            check=True,
        )
    return r.stdout, errors


def tiny_checkpoint(path: Path, channels: int = 3, image_size: int = 16) -> Path:
    """A checkpoint of the MODEL encoder at random init, whose BN layers hold running statistics
    of their own (not the initial 0 and 1), as a trained one does."""
    import torch

    from simclr.checkpoint import save_checkpoint
    from simclr.models import build_model

    torch.manual_seed(0)
    encoder, head = build_model(channels, image_size, **MODEL)
    with torch.no_grad():
        for _ in range(3):
            encoder(torch.rand(16, channels, image_size, image_size) * 0.8)
    return save_checkpoint(path, encoder, head, MODEL, image_size, {"dataset": "tiny"})


def photo_files() -> list[Path]:
    """Real photographs shipped with scikit-image, in several formats and modes: PNG (RGB,
    RGBA, grayscale), JPEG, GIF (palette), TIFF (grayscale)."""
    import skimage.data

    folder = Path(skimage.data.__file__).parent
    names = ("coffee.png", "chelsea.png", "rocket.jpg", "retina.jpg", "horse.png",
             "no_time_for_that_tiny.gif", "multipage.tif", "camera.png")  # fmt: skip
    return [folder / name for name in names]


# A stand-in for the pipeline in seconds, for the experiment machinery (queue, sweeps, compare,
# reproduce): one stage that writes reports/summary.json and reports/metrics.json in the real
# schema. Replica r of learning rate lr scores 0.5 + lr + noise on "digits.linear.100%" (an
# effect of lr) and 0.6 + noise on "digits.knn.100%" (no effect), the noise in [-0.02, 0.02].
FAKE_STAGE = """\
import json, pathlib, yaml
p = yaml.safe_load(open("params.yaml"))
noise = lambda r, k: ((7 * r + 3 * k) % 5 - 2) / 100
lr, k = p["lr"], round(10 * p["lr"])
values = {
    "digits.linear.100%": {str(r): 0.5 + lr + noise(r, 1 + k) for r in p["replicas"]},
    "digits.knn.100%": {str(r): 0.6 + noise(r, k) for r in p["replicas"]},
}
mean = lambda v: sum(v.values()) / len(v)
headline = {k: {"mean": mean(v), "by_replica": v} for k, v in values.items()}
pathlib.Path("reports").mkdir(exist_ok=True)
json.dump({"headline": headline}, open("reports/summary.json", "w"))
tree = {"digits": {m: {"100%": mean(values[f"digits.{m}.100%"])} for m in ("linear", "knn")}}
json.dump(tree, open("reports/metrics.json", "w"))
"""
FAKE_DVC_YAML = """\
stages:
  evaluate:
    cmd: python make_metrics.py
    deps: [make_metrics.py]
    params: [lr, replicas]
    outs:
      - reports/summary.json:
          cache: false
    metrics:
      - reports/metrics.json:
          cache: false
"""


def fake_value(metric: str, lr: float, replica: int) -> float:
    """What FAKE_STAGE writes for one replica (the same formula, for the expected numbers)."""
    noise = lambda r, k: ((7 * r + 3 * k) % 5 - 2) / 100  # noqa: E731
    if metric == "digits.linear.100%":
        return 0.5 + lr + noise(replica, 1 + round(10 * lr))
    return 0.6 + noise(replica, round(10 * lr))


def fake_pipeline(path: Path, lr: float = 0.1, replicas: str = "[0, 1, 2]") -> Path:
    """FAKE_STAGE's repository files in `path` (not yet a Git or DVC repository)."""
    (path / "make_metrics.py").write_text(FAKE_STAGE)
    (path / "dvc.yaml").write_text(FAKE_DVC_YAML)
    (path / "params.yaml").write_text(f"lr: {lr}\nreplicas: {replicas}\n")
    return path


@contextmanager
def process_worker(path: Path, env: dict, pool: str) -> Iterator[subprocess.Popen]:
    """A real `prefect worker start --pool POOL` in `path`, its log beside it, stopped after."""
    with (path.parent / f"{pool}-worker.log").open("w") as log:
        worker = subprocess.Popen(
            ["prefect", "worker", "start", "--pool", pool],
            cwd=path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            yield worker
        finally:
            worker.terminate()
            worker.wait(timeout=30)


def tree_digest(root: Path) -> str:
    """Every path, kind and byte below `root` (or of the file `root`): equal digests, an
    untouched tree."""
    import hashlib

    h = hashlib.sha256()
    for path in sorted([root, *root.rglob("*")] if root.is_dir() else [root]):
        h.update(str(path.relative_to(root.parent)).encode())
        h.update(path.read_bytes() if path.is_file() else b"<dir>")
    return h.hexdigest()


def _comment(node, key) -> str | None:
    """The end-of-line comment after `key:` in a ruamel round-trip mapping."""
    tokens = node.ca.items.get(key)
    token = tokens[2] if tokens and len(tokens) > 2 else None
    text = token.value.split("\n")[0].strip().removeprefix("#").strip() if token else ""
    return text or None


def params_differences(
    node, model: type[BaseModel], prefix: str = "", loaded: BaseModel | None = None
) -> list[str]:
    """How a params.yaml read with ruamel (round-trip: comments kept) differs from `model`:
    keys it lacks or adds, and comments that are not the field's description. With `loaded`
    (the file as the model reads it), a value that departs from the model's default (the
    paper's) must say so instead: `paper: <default>; <why>`."""
    found = []
    keys, fields = set(node), set(model.model_fields)
    found += [f"{prefix}{k}: in params.yaml, not in {model.__name__}" for k in keys - fields]
    found += [f"{prefix}{k}: missing from params.yaml" for k in fields - keys]
    defaults = model.model_construct()
    for key in sorted(keys & fields):
        field, comment = model.model_fields[key], _comment(node, key)
        sub = field.annotation
        nested = isinstance(sub, type) and issubclass(sub, BaseModel)
        value = None if loaded is None else getattr(loaded, key)
        if not nested and loaded is not None and value != getattr(defaults, key):
            said = f"paper: {_shown(getattr(defaults, key))}; "
            if not (comment or "").startswith(said) or len(comment) < len(said) + 10:
                found.append(f"{prefix}{key}: departs from the paper; comment {comment!r} "
                             f"should read '{said}<why>'")  # fmt: skip
        elif comment != field.description:
            found.append(f"{prefix}{key}: comment {comment!r} != {field.description!r}")
        if nested:
            found += params_differences(node[key], sub, f"{prefix}{key}.", value)
    return found


def _shown(value) -> str:
    """A default as params.yaml's comments write it: lists in brackets, an empty one 'none'."""
    if isinstance(value, tuple):
        return f"[{', '.join(map(str, value))}]" if value else "none"
    return str(value)


def fake_details(accuracies: dict, significance: dict | None = None) -> dict:
    """A details.json of one replica: {protocol: {method: {fraction: [run accuracies]}}}."""
    out = {
        "protocol": {"train_images": 10, "test_images": 5},
        "seconds": {"linear+knn": 1.0},
        "significance": significance or {},
    }
    for protocol, by_method in accuracies.items():
        out[protocol] = {
            m: {
                f: {"runs": [{"accuracy": a, "mean_per_class": a - 0.01} for a in accs]}
                for f, accs in by_fraction.items()
            }
            for m, by_fraction in by_method.items()
        }
    return out


LIBRARY_DOC = ROOT / "docs" / "library.md"


def library_snippet() -> str:
    """The one Python block of docs/library.md: simclr/ used as a plain library."""
    (code,) = re.findall(r"```python\n(.*?)```", LIBRARY_DOC.read_text(), re.S)
    return code

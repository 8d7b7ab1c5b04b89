"""Wall time and accuracy of the linear-probe protocol on CIFAR-10 dev features, before (the
probe of a git ref, `--before`: its simclr/probe.py, and its simclr/logistic.py where it has
one) and after (this checkout's).

    python -m benchmarks.cpu.probe_time --data CIFAR10_DEV [--before REF] [--fractions 1.0]
        [--seeds 5] [--train 10000] [--methods random,pixels]
        [--out benchmarks/results/probe_time.jsonl]

The dev folder's (`--data`: train/ and val/ of class folders) train images (the first
`--train` of them, class-balanced order kept) are the labelled split and its val images the
test split, decoded at 32 px RGB. Features: `random`, the
default small encoder at random initialisation (the evaluate stage's "random init" baseline,
128-d), and `pixels`, the raw pixels (3,072-d). Each probe is the evaluate stage's: the label
subsets of `label_subsets`, the C grid and max_iter of params.yaml, C chosen on a validation
split, then the refit. Both probes run in this process, on the CPU, one after the other; a
fraction still running after `--budget` seconds is stopped and recorded as stopped.
"""

from __future__ import annotations

import argparse
import importlib.util
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import ROOT, results_file, save
from simclr.config import EvaluateConfig
from simclr.data.imagefolder import load_image_folder
from simclr.evaluate import label_subsets
from simclr.features import extract_features, raw_pixels
from simclr.models import Encoder
from simclr.probe import logistic_probes


def _module_at(ref: str, path: str, name: str, rewrite: dict[str, str]):
    """The file `path` as it is at git `ref`, imported as module `name` (None where the ref has
    no such file), with `rewrite`'s imports pointed at the other modules taken from the ref."""
    show = subprocess.run(["git", "show", f"{ref}:{path}"], cwd=ROOT, capture_output=True)
    if show.returncode:
        return None
    text = show.stdout.decode()
    for old, new in rewrite.items():
        text = text.replace(old, new)
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def probe_at(ref: str):
    """simclr/probe.py as it is at git `ref`, with that ref's simclr/logistic.py where it has
    one (the torch probe), imported under other names."""
    solver = _module_at(ref, "simclr/logistic.py", "logistic_before", {})
    rewrite = {"from simclr.logistic import": "from logistic_before import"} if solver else {}
    return _module_at(ref, "simclr/probe.py", "probe_before", rewrite)


def features(data: Path, n_train: int) -> dict[str, tuple]:
    train = load_image_folder(data / "train", 32, 3)
    test = load_image_folder(data / "val", 32, 3)
    keep = np.sort(np.random.default_rng(0).permutation(len(train.labels))[:n_train])
    x_train, y_train = train.images[keep], train.labels[keep]
    torch.manual_seed(0)
    encoder = Encoder(3, 32)
    cpu = torch.device("cpu")
    out = {
        "random": tuple(extract_features(encoder, x, cpu) for x in (x_train, test.images)),
        "pixels": (raw_pixels(x_train), raw_pixels(test.images)),
    }
    return {k: (*v, y_train, test.labels) for k, v in out.items()}


def _stop(signum, frame):
    raise TimeoutError


def timed_protocol(fit_subsets, x, y, x_test, y_test, subsets: dict, budget: int) -> dict:
    """{fraction: {seconds, accuracy (mean over subsets)}} of one probe implementation; a
    fraction still running after `budget` seconds is stopped and recorded as such (SIGALRM)."""
    out = {}
    signal.signal(signal.SIGALRM, _stop)
    for key, subs in subsets.items():
        start = time.perf_counter()
        signal.alarm(budget)
        try:
            predictions = fit_subsets(x, y, subs, x_test)
        except TimeoutError:
            out[key] = {"seconds": round(time.perf_counter() - start, 2), "stopped": True}
            print(f"    {key}: stopped after {out[key]['seconds']:.0f} s", flush=True)
            continue
        finally:
            signal.alarm(0)
        seconds = time.perf_counter() - start
        acc = float(np.mean([np.mean(p == y_test) for p in predictions]))
        out[key] = {"seconds": round(seconds, 2), "accuracy": round(acc, 4)}
        print(f"    {key}: {seconds:.1f} s, accuracy {acc:.4f}", flush=True)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, required=True, help="the CIFAR-10 dev folder")
    ap.add_argument("--before", default="main", help="git ref of the probe to compare with")
    ap.add_argument("--fractions", default="0.01,0.1,1.0")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--train", type=int, default=10_000)
    ap.add_argument("--methods", default="random,pixels")
    ap.add_argument("--budget", type=int, default=300, help="seconds per fraction and probe")
    ap.add_argument("--out", type=Path, default=results_file("probe_time"))
    args = ap.parse_args()
    fractions = [float(f) for f in args.fractions.split(",")]
    cfg = EvaluateConfig(fractions=fractions, seeds=args.seeds)
    grid, before = tuple(cfg.C), probe_at(args.before)

    def theirs(x, y, subs, x_test):
        return [
            before.logistic_probe(
                x[i], y[i], x_test, grid, cfg.val_fraction, cfg.max_iter, s
            ).predictions
            for s, i in subs
        ]

    def ours(x, y, subs, x_test):
        fits = logistic_probes(x, y, subs, x_test, grid, cfg.val_fraction, cfg.max_iter)
        return [f.predictions for f in fits]

    start = time.perf_counter()
    feats = features(args.data, args.train)
    print(f"decoded and extracted in {time.perf_counter() - start:.1f} s", flush=True)
    results = {}
    for method in args.methods.split(","):
        x, x_test, y, y_test = feats[method]
        subsets = label_subsets(y, 0, fractions=cfg.fractions, seeds=cfg.seeds)
        results[method] = {"dims": x.shape[1]}
        for name, fit in (("this checkout", ours), (f"probe@{args.before}", theirs)):
            print(f"  {method} ({x.shape[1]}-d), {name}:", flush=True)
            results[method][name] = timed_protocol(fit, x, y, x_test, y_test, subsets, args.budget)
    record = {
        "threads": torch.get_num_threads(),
        "train": args.train,
        "test": int(len(feats["random"][3])),
        "seeds": args.seeds,
        "results": results,
    }
    return save(args.out, record)


if __name__ == "__main__":
    raise SystemExit(main())

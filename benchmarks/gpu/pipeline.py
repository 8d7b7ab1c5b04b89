"""Issue 22: the real pipeline stages with pretraining on the device, in a temporary copy of this
checkout, timed stage by stage, with one SIGKILL in mid-pretraining and a rerun.

    python3 -m benchmarks.gpu.pipeline --data .gpu_data/cifar10-jpeg --out-dir $OUT [--device cuda]
        [--epochs 30] [--batch 512] [--workers 8] [--smoke]

The copy gets params for the carried dev JPEGs (an image folder, prepared there by the real
prepare stage at 32 px) with textures as the transfer set, ResNet-18, `pretrain.device`
`--device`, precision auto, `loader_workers` `--workers`, evaluate.seeds 2. With DVC importable,
each stage is `dvc repro -s <stage>` in a Git repository (`dvc init --no-scm` where there is no
git); without it, the stage commands of dvc.yaml one by one (`mode` in the JSON says which).
Then: pretrain again with `pretrain.compile: true`; then the uncompiled pretrain forced, killed
with SIGKILL once the resumable state has been saved, and rerun: its final loss against the
uninterrupted one (on a GPU a statistical match, not bitwise). Every stage's output goes to
OUT/pipeline.log; the figures to OUT/pipeline.json while it runs (what a run stopped by its
time limit leaves), then as one record appended to OUT/gpu_pipeline.jsonl. GPU memory is
nvidia-smi's used memory, sampled every 0.5 s, the most seen during each stage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.common import ROOT, save
from tasks.paths import RUN, checkpoint, pretrain_dir  # pathlib only

PRETRAIN = "pretrain@0"
COPY_IGNORE = shutil.ignore_patterns(
    *(".git", ".whl", ".gpu_data", ".gl", ".venv", "cache", "tmp", ".resume", "__pycache__"),
    *(".ruff_cache", ".pytest_cache", "*.egg-info"),
)
STAGES = [  # (dvc stage, its cmd in dvc.yaml), in DAG order
    ("prepare@cifar10dev", "python -m flows.prepare cifar10dev"),
    ("prepare@textures", "python -m flows.prepare textures"),
    ("validate", "python -m flows.validate"),
    ("pretrain@0", "python -m flows.pretrain 0"),  # one pretraining replica (params: replicas)
    ("evaluate@0", "python -m flows.evaluate 0"),
    ("transfer@textures-0", "python -m flows.transfer textures 0"),
    ("summarize", "python -m flows.summarize"),
    ("report", "python -m flows.report"),
]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, required=True, help="<data>/{train,val}/<class>/*.jpg")
    p.add_argument("--out-dir", type=Path, required=True)
    p.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=512)
    p.add_argument("--workers", type=int, default=8, help="pretrain.loader_workers")
    p.add_argument("--smoke", action="store_true", help="small encoder, tiny evaluation (CPU)")
    return p.parse_args(argv)


def params_for(args: argparse.Namespace, base: dict) -> dict:
    data = args.data.resolve()
    base["datasets"] = {
        "cifar10dev": {
            "source": "imagefolder",
            "root": str(data / "train"),
            "test_root": str(data / "val"),
            "image_size": 32,
        },
        "textures": {"source": "textures", "image_size": 32, "channels": 3},
    }
    base["model"].update(encoder="small" if args.smoke else "resnet18")
    base["pretrain"].update(
        dataset="cifar10dev",
        epochs=args.epochs,
        batch_size=args.batch,
        warmup_epochs=1,
        knn_every=args.epochs,
        device=args.device,
        precision="auto",
        compile=False,
        loader_workers=args.workers,
    )
    base["pretrain"]["augment"].update(crop_scale=[0.08, 1.0], flip_p=0.5)
    base["evaluate"].update(seeds=1 if args.smoke else 2)
    if args.smoke:
        base["evaluate"].update(fractions=[1.0])
        base["evaluate"]["finetune"].update(epochs=0)
    base["transfer"] = {"datasets": ["textures"]}
    base["replicas"] = [0]  # one replica fits the device time; the CPU pipeline runs three
    return base


class Runner:
    """Runs commands in the copy, appending their output to the log and timing them."""

    def __init__(self, work: Path, log: Path):
        self.work, self.log = work, log
        self.env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "GX_ANALYTICS_ENABLED": "false",
            "DVC_NO_ANALYTICS": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def start(self, cmd: str) -> subprocess.Popen:
        with self.log.open("a") as f:
            f.write(f"\n$ {cmd}\n")
        return subprocess.Popen(
            cmd,
            shell=True,
            cwd=self.work,
            env=self.env,
            stdout=self.log.open("a"),
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so that a kill reaches the whole stage
        )

    def run(self, cmd: str) -> dict:
        gpu = GpuMemory()
        start = time.perf_counter()
        code = self.start(cmd).wait()
        return {
            "command": cmd,
            "seconds": round(time.perf_counter() - start, 2),
            "status": code,
            "gpu_memory_used_mib_max": gpu.stop(),
        }


class GpuMemory:
    """The most GPU memory nvidia-smi reports in use while it lives (None without nvidia-smi)."""

    def __init__(self):
        self.most, self.done = None, threading.Event()
        if shutil.which("nvidia-smi"):
            self.thread = threading.Thread(target=self._poll, daemon=True)
            self.thread.start()

    def _poll(self) -> None:
        query = ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"]
        while not self.done.is_set():
            out = subprocess.run(query, capture_output=True, text=True).stdout.split()
            if out:
                self.most = max(self.most or 0, int(out[0]))
            self.done.wait(0.5)

    def stop(self) -> int | None:
        self.done.set()
        return self.most


def setup(args: argparse.Namespace, work: Path, runner: Runner) -> str:
    """Copy the checkout, write its params, make it a DVC (and Git) repository: the mode."""
    from ruamel.yaml import YAML

    shutil.copytree(ROOT, work, ignore=COPY_IGNORE)
    yaml = YAML()
    params = params_for(args, yaml.load((ROOT / "params.yaml").read_text()))
    with open(work / "params.yaml", "w") as f:
        yaml.dump(params, f)
    if runner.run(f"{sys.executable} -m dvc --version")["status"] != 0:
        return "stage commands (dvc does not import)"
    if shutil.which("git"):
        git = "git -c user.name=gpu -c user.email=gpu@localhost"
        runner.run(f"git init -q && {git} add -A && {git} commit -qm copy")
        return "dvc repro -s, git repository"
    runner.run(f"{sys.executable} -m dvc config core.no_scm true")
    return "dvc repro -s, dvc with core.no_scm (no git here)"


def stage_command(mode: str, stage: str, cmd: str, force: bool = False) -> str:
    if mode.startswith("stage commands"):
        return cmd
    return f"{sys.executable} -m dvc repro {'-f ' if force else ''}-s {stage}"


def pretrain_figures(work: Path) -> dict:
    run = json.loads((work / pretrain_dir(0) / RUN).read_text())
    epochs = run.get("epochs", [])
    timed = epochs[1:] or epochs
    rates = sorted(e["images_per_s"] for e in timed)
    import torch

    state = torch.load(work / checkpoint(0), weights_only=True, map_location="cpu")
    return {
        "images_per_s_median": rates[len(rates) // 2] if rates else None,
        "epoch_seconds": [e["epoch_seconds"] for e in epochs],
        "resumed_from_epoch": run.get("resumed_from_epoch"),
        "device": run.get("provenance", {}).get("device"),
        "precision": state.get("precision"),
        "final_loss": state["history"][-1]["loss"],
        "losses": [h["loss"] for h in state["history"]],
    }


def set_compile(work: Path, on: bool) -> None:
    from ruamel.yaml import YAML

    yaml = YAML()
    params = yaml.load((work / "params.yaml").read_text())
    params["pretrain"]["compile"] = on
    with open(work / "params.yaml", "w") as f:
        yaml.dump(params, f)


def kill_and_resume(mode: str, work: Path, runner: Runner, timeout: float) -> dict:
    """Force the pretrain stage, SIGKILL it (its whole session) once a resumable state has been
    saved twice, and rerun it forced: the rerun's figures."""
    cmd = stage_command(mode, PRETRAIN, STAGES[3][1], force=True)
    start = time.perf_counter()
    proc = runner.start(cmd)
    saves, seen = 0, None
    while proc.poll() is None and saves < 2 and time.perf_counter() - start < timeout:
        states = list((work / ".resume").glob("pretrain-*.pt"))
        stamp = states[0].stat().st_mtime_ns if states else None
        if stamp is not None and stamp != seen:
            saves, seen = saves + 1, stamp
        time.sleep(0.05)
    if proc.poll() is not None:
        return {"killed": False, "why": f"pretrain ended first (status {proc.returncode})"}
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_after = round(time.perf_counter() - start, 2)
    rerun = runner.run(cmd)
    return {"killed": True, "killed_after_seconds": killed_after, "rerun": rerun}


def pipeline(args: argparse.Namespace, work: Path, runner: Runner, result: dict) -> None:
    """Fills `result` step by step, written to pipeline.json after each, so that a run stopped
    by its time limit still leaves what it measured."""
    write = (args.out_dir / "pipeline.json").write_text
    result.update(mode=setup(args, work, runner), stages={})
    mode = result["mode"]
    for stage, cmd in STAGES:
        result["stages"][stage] = r = runner.run(stage_command(mode, stage, cmd))
        write(json.dumps(result, indent=2))
        print(f"{stage}: {r['seconds']:.1f} s, status {r['status']}", flush=True)
        if r["status"] != 0:
            return
        if stage == PRETRAIN:
            result["pretrain"] = pretrain_figures(work)
    set_compile(work, True)
    r = runner.run(stage_command(mode, PRETRAIN, STAGES[3][1]))
    result["pretrain_compile"] = {**r, **(pretrain_figures(work) if r["status"] == 0 else {})}
    print(f"pretrain, compile: {r['seconds']:.1f} s, status {r['status']}", flush=True)
    write(json.dumps(result, indent=2))
    set_compile(work, False)
    resumed = kill_and_resume(mode, work, runner, timeout=300)
    if resumed.get("rerun", {}).get("status") == 0:
        resumed["pretrain"] = pretrain_figures(work)
        resumed["final_loss_uninterrupted"] = result["pretrain"]["final_loss"]
        resumed["final_loss_difference"] = (
            resumed["pretrain"]["final_loss"] - result["pretrain"]["final_loss"]
        )
    result["kill_resume"] = resumed
    print(f"kill and resume: {json.dumps({k: v for k, v in resumed.items() if k != 'pretrain'})}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    import torch

    with tempfile.TemporaryDirectory(prefix="gpu-pipeline-") as tmp:
        work = Path(tmp) / "project"
        runner = Runner(work, args.out_dir / "pipeline.log")
        start, result = time.perf_counter(), {}
        pipeline(args, work, runner, result)
    result.update(
        seconds=round(time.perf_counter() - start, 1),
        device=torch.cuda.get_device_name() if args.device == "cuda" else "CPU smoke test",
        torch=torch.__version__,
        settings={**vars(args), "data": str(args.data), "out_dir": str(args.out_dir)},
    )
    (args.out_dir / "pipeline.json").unlink(missing_ok=True)  # the partial record: done
    save(args.out_dir / "gpu_pipeline.jsonl", result, args.device)
    print(f"{result['mode']}, {result['seconds']} s")
    return 0 if all(s["status"] == 0 for s in result["stages"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())

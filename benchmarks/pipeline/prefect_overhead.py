"""Prefect's cost on the default pipeline, stage by stage.

Two fresh clones of HEAD run every stage of the default `dvc repro` in DAG order, one
`dvc repro -s <stage>` at a time, timed:
  no server  - as shipped: no PREFECT_API_URL, so each stage starts Prefect's temporary server;
  server     - every stage reports to a running `prefect server start` (the scheduled setup).
The work inside each stage is the summed duration of its task runs, read from the server; a
stage's overhead is its wall time minus that (Python start, imports, flow and task bookkeeping,
and the temporary server).

    python -m benchmarks.pipeline.prefect_overhead [--out benchmarks/results/prefect_overhead.jsonl]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from benchmarks.common import ROOT, results_file, save
from benchmarks.pipeline.workspace import BIN, clone, load_params, run


def stages(params: dict) -> list[str]:
    return [
        *(f"prepare@{d}" for d in params["datasets"]),
        "validate",
        "pretrain",
        "evaluate",
        *(f"transfer@{d}" for d in params["transfer"]["datasets"]),
        "report",
    ]


def _api(url: str, path: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url + path, data, {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def start_server() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tempfile.mkdtemp(prefix="prefect-home-")
    env = {**os.environ, "PREFECT_HOME": home, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    cmd = [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/api"
    for _ in range(180):
        try:
            _api(url, "/health")
            return server, url
        except OSError:
            time.sleep(0.5)
    server.kill()
    sys.exit("prefect server did not start")


def task_seconds(url: str, since: str, until: str) -> float:
    """Summed run time of the task runs that started in [since, until]."""
    body = {"task_runs": {"start_time": {"after_": since, "before_": until}}, "limit": 200}
    return sum(t["total_run_time"] for t in _api(url, "/task_runs/filter", body))


def timed_stages(names: list[str], url: str | None) -> dict[str, dict]:
    if url:
        os.environ["PREFECT_API_URL"] = url
    else:
        os.environ.pop("PREFECT_API_URL", None)
    path = clone(load_params())
    out = {}
    for name in names:
        since = datetime.now(UTC).isoformat()
        r = run(path, "dvc", "repro", "-s", name)
        out[name] = {
            "seconds": r["seconds"],
            "since": since,
            "until": datetime.now(UTC).isoformat(),
        }
        print(f"{'server' if url else 'no server'}: {name} {r['seconds']} s", flush=True)
    return out


def import_seconds(code: str, repeats: int = 3) -> float:
    """Median wall time of a fresh interpreter running `code`."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([str(BIN / "python"), "-c", code], check=True, cwd=ROOT)
        times.append(time.perf_counter() - start)
    return round(sorted(times)[len(times) // 2], 2)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=results_file("prefect_overhead"))
    args = ap.parse_args()
    names = stages(load_params())
    imports = {
        "python": import_seconds("pass"),
        "prefect": import_seconds("import prefect"),
        "torch, torchvision, sklearn, pandas": import_seconds(
            "import torch, torchvision, sklearn, pandas"
        ),
    }
    print("import seconds:", imports, flush=True)
    server, url = start_server()
    try:
        with_server = timed_stages(names, url)
        work = {n: task_seconds(url, s["since"], s["until"]) for n, s in with_server.items()}
    finally:
        server.terminate()
        server.wait(timeout=30)
    without = timed_stages(names, None)
    rows = []
    for n in names:
        rows.append(
            {
                "stage": n,
                "task_seconds": round(work[n], 1),
                "server_seconds": with_server[n]["seconds"],
                "no_server_seconds": without[n]["seconds"],
                "overhead_server": round(with_server[n]["seconds"] - work[n], 1),
                "overhead_no_server": round(without[n]["seconds"] - work[n], 1),
            }
        )
    total = {k: round(sum(r[k] for r in rows), 1) for k in rows[0] if k != "stage"}
    report = {
        "import_seconds": imports,
        "stages": rows,
        "total": total,
        "overhead_fraction_server": round(total["overhead_server"] / total["server_seconds"], 3),
        "overhead_fraction_no_server": round(
            total["overhead_no_server"] / total["no_server_seconds"], 3
        ),
    }
    print("| stage | work in tasks (s) | with server (s) | overhead | no server (s) | overhead |")
    print("|---|---:|---:|---:|---:|---:|")
    for r in [*rows, {"stage": "total", **total}]:
        print(
            f"| {r['stage']} | {r['task_seconds']} | {r['server_seconds']} | "
            f"{r['overhead_server']} | {r['no_server_seconds']} | {r['overhead_no_server']} |"
        )
    print("import seconds:", imports)
    print(
        f"overhead: {report['overhead_fraction_server']:.1%} with a server, "
        f"{report['overhead_fraction_no_server']:.1%} without"
    )
    return save(args.out, report)


if __name__ == "__main__":
    raise SystemExit(main())

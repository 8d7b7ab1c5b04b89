"""simclr.device.reuse_freed_memory in a fresh interpreter (it changes the process's allocator):
after a few steps that each allocate and free several 64 MiB activations, a step reuses the
freed pages instead of faulting in new zeroed ones, which is what made the fp32 CPU step
faster. With glibc's default every step faults all of them in again."""

import subprocess
import sys

from helpers import ROOT, pythonpath

STEPS = """
import resource, sys, torch
from simclr.device import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
def step(n=16 * 1024 * 1024):  # float32: 64 MiB each, above glibc's 32 MiB mmap threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    activations = [torch.ones(n) for _ in range(4)]
    later = torch.ones(10)  # allocated after them, as a step's small tensors are
    del activations, later
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
print(*[step() for _ in range(8)])
"""
PAGES = 4 * 64 * 1024 * 1024 // 4096  # of one step's activations


def _faults_per_step(mode: str) -> list[int]:
    r = subprocess.run(
        [sys.executable, "-c", STEPS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": pythonpath(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    return [int(v) for v in r.stdout.split()]


def test_freed_activations_are_reused_not_faulted_in_again():
    default, reuse = _faults_per_step("default"), _faults_per_step("reuse")
    assert min(default[1:]) > PAGES // 2, default  # glibc maps them anew every step
    assert max(reuse[-3:]) < PAGES // 20, reuse  # settled: the freed pages are reused

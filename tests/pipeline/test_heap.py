"""simclr.device.reuse_freed_memory in a fresh interpreter (it changes the process's allocator):
a second 64 MiB tensor reuses the first one's pages instead of faulting in new zeroed ones,
which is what made the fp32 CPU step faster."""

import subprocess
import sys

from helpers import ROOT, pythonpath

FAULTS = """
import resource, sys, torch
from simclr.device import reuse_freed_memory
if sys.argv[1] == "reuse":
    assert reuse_freed_memory()
def faults(n=16 * 1024 * 1024):  # float32: 64 MiB, above glibc's 32 MiB mmap threshold
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    torch.ones(n)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
faults()
print(faults())
"""


def _second_allocation_faults(mode: str) -> int:
    r = subprocess.run(
        [sys.executable, "-c", FAULTS, mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PYTHONPATH": pythonpath(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert r.returncode == 0, r.stderr
    return int(r.stdout.split()[-1])


def test_a_freed_large_tensor_is_reused_not_faulted_in_again():
    pages = 64 * 1024 * 1024 // 4096
    assert _second_allocation_faults("default") > pages // 2  # glibc maps it anew
    assert _second_allocation_faults("reuse") < pages // 20

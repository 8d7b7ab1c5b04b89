"""Eager against torch.compile of our pretraining step on the CPU (ResNet-18 with the CIFAR stem
+ v1 head, bf16 autocast, channels_last, NT-Xent, SGD) on random 32 px images, the two stepped
in turn so that both share the machine's noise.

    .venv/bin/python benchmarks/compile_step.py [N source images per step, default 128] [mode]

Prints the compile time (first step) and images/s of each, medians of 4 steps.
"""

import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from simclr.config import ModelConfig
from simclr.loss import nt_xent
from simclr.models import build_model

torch.set_num_threads(2)
MODEL = ModelConfig(encoder="resnet18", head="v1", proj_hidden_dim=512, proj_dim=128)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 128
mode = sys.argv[2] if len(sys.argv) > 2 else "default"


def make():
    torch.manual_seed(0)
    enc, head = build_model(MODEL, 3, 32)
    net = torch.nn.Sequential(enc, head).to(memory_format=torch.channels_last)
    return net


x = torch.rand(2 * N, 3, 32, 32).contiguous(memory_format=torch.channels_last)


def stepper(net):
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

    def step():
        with torch.autocast("cpu", dtype=torch.bfloat16):
            z = net(x)
        loss = nt_xent(z[:N], z[N:], 0.5)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss.item()

    return step


eager = stepper(make())
cnet = make()
compiled = stepper(torch.compile(cnet, mode=None if mode == "default" else mode))
t = time.perf_counter()
compiled()
print(f"compile+first step {time.perf_counter() - t:.1f} s", flush=True)
t = time.perf_counter()
compiled()
print(f"second compiled step {time.perf_counter() - t:.1f} s", flush=True)
eager()
te, tc = [], []
for _ in range(4):
    t = time.perf_counter()
    eager()
    te.append(time.perf_counter() - t)
    t = time.perf_counter()
    compiled()
    tc.append(time.perf_counter() - t)
    print(f"eager {te[-1]:.2f} s  compiled {tc[-1]:.2f} s", flush=True)
me, mc = statistics.median(te), statistics.median(tc)
print(f"N={N}: eager {N / me:.1f} img/s, compiled {N / mc:.1f} img/s, ratio {me / mc:.2f}x")

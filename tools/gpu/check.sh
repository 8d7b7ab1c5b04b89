#!/usr/bin/env bash
# Issue 21 on a bare H200, in one device call (tools/gpu/README.md):
#
#     tools/gpu/check.sh            # carry .whl/library .whl/lightly .gpu_data/cifar10dev
#     tools/gpu/check.sh --device cpu --smoke    # here: the same steps on tiny sizes
#
# Installs the carried wheels (device README's --target line), then runs in order, each under
# its own timeout, skipping what would overrun the budget (BUDGET_S, default 480 s):
#   r18_b512, r18_b1024         ResNet-18 CIFAR stem, 32 px, bf16 + channels_last
#   r50_96_b256                 ResNet-50 at 96 px, batch 256
#   lightly_b512                the lightly reference, 16 DataLoader workers, bf16 + channels_last
#   learn                       ~150 s pretraining on the 10k dev images, probes vs random init
#   r18_b512_compile, r18_b1024_compile    the same with torch.compile
# Results: $OUT/summary.jsonl (every run's record inside), $OUT/check.log, $OUT/nvidia-smi.txt,
# $OUT/pip_check.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=cuda SMOKE=0
while [ $# -gt 0 ]; do
    case $1 in
    --device) DEVICE=$2 && shift ;;
    --smoke) SMOKE=1 ;;
    *) echo "usage: $0 [--device cuda|cpu] [--smoke]" >&2 && exit 2 ;;
    esac
    shift
done
BUDGET_S=${BUDGET_S:-480}
WORK=$(mktemp -d) # one JSON a run; only the summary goes to $OUT (8 files come back at most)
source tools/gpu/setup.sh check.log library lightly
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || echo "no nvidia-smi" >"$OUT/nvidia-smi.txt"
$PY -c 'import torch, torchvision, lightly, pydantic; print("torch", torch.__version__,
    "torchvision", torchvision.__version__, "cuda", torch.version.cuda, "lightly", lightly.__version__,
    "pydantic", pydantic.__version__, "gpu", torch.cuda.is_available() and torch.cuda.get_device_name())'

if [ $SMOKE = 1 ]; then
    B256=4 B512=8 B1024=16 SIZES=(--steps 2 --epochs 1) WORKERS=2 LEARN=(--epochs 1 --limit 200)
else
    B256=256 B512=512 B1024=1024 SIZES=(--steps 20 --epochs 3) WORKERS=16 LEARN=(--seconds 150)
fi
step() { # $1: name, $2: seconds it may take; the rest: its command
    local name=$1 limit=$2
    shift 2
    if [ $((SECONDS + limit)) -gt "$BUDGET_S" ]; then
        echo "== $name: SKIPPED, ${SECONDS}s used + ${limit}s would pass the ${BUDGET_S}s budget"
        return
    fi
    echo "== $name (at ${SECONDS}s): $*"
    timeout "$limit" "$@" || echo "== $name: FAILED with status $?"
}
ours() { # $1: name, $2: timeout; the rest: benchmarks.gpu.throughput options
    local name=$1 limit=$2
    shift 2
    step "$name" "$limit" $PY -m benchmarks.gpu.throughput --device "$DEVICE" "${SIZES[@]}" \
        "$@" --out "$WORK/$name.jsonl"
}
ours r18_b512 90 --batch $B512
ours r18_b1024 90 --batch $B1024
ours r50_96_b256 90 --encoder resnet50 --image-size 96 --batch $B256
ours lightly_b512 120 --reference lightly --loader-workers $WORKERS --batch $B512
rate=$($PY -c 'import json, sys
print(json.loads(open(sys.argv[1]).readlines()[-1])["images_per_s"]["median"])' \
    "$WORK/r18_b512.jsonl" 2>/dev/null || echo 5000)
step learn 260 $PY -m benchmarks.gpu.learn --device "$DEVICE" --data .gpu_data/cifar10dev \
    --images-per-s "$rate" "${LEARN[@]}" --out "$WORK/learn.jsonl"
ours r18_b512_compile 150 --batch $B512 --compile
ours r18_b1024_compile 150 --batch $B1024 --compile
$PY -m tools.gpu.summary "$WORK" "$OUT/summary.jsonl"
echo "== done in ${SECONDS}s"

#!/usr/bin/env bash
# Issue 22 on a bare H200, in one device call (tools/gpu/README.md):
#
#     tools/gpu/pipeline.sh          # carry .whl/library .whl/pipeline .gpu_data/cifar10-jpeg
#     tools/gpu/pipeline.sh --device cpu --smoke    # here: the same on tiny sizes
#
# Installs the carried wheels (device README's --target line), records `pip check` for them,
# then runs benchmarks.gpu.pipeline: every stage for real (dvc repro -s in a temporary
# copy, or the stage commands if DVC does not import), pretrain again with compile, one
# SIGKILL mid-pretrain and a rerun. Results: $OUT/gpu_pipeline.jsonl ($OUT/pipeline.json if stopped early), $OUT/pipeline.log,
# $OUT/run.log, $OUT/pip_check.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
DEVICE=cuda EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --device) DEVICE=$2 && shift ;;
    --smoke) EXTRA=(--smoke --epochs 3 --batch 64 --workers 2) ;;
    *) echo "usage: $0 [--device cuda|cpu] [--smoke]" >&2 && exit 2 ;;
    esac
    shift
done
source tools/gpu/setup.sh run.log library pipeline
command -v git >/dev/null && git --version || echo "no git on this machine"
timeout "${LIMIT_S:-540}" $PY -m benchmarks.gpu.pipeline --data .gpu_data/cifar10-jpeg --out-dir "$OUT" \
    --device "$DEVICE" "${EXTRA[@]}"
echo "== benchmarks.gpu.pipeline status $? after ${SECONDS}s"

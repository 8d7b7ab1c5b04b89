#!/usr/bin/env bash
# Issue 22 on a bare H200, in one device call (benchmarks/README.md, "On a GPU machine"):
#
#     benchmarks/gpu_pipeline.sh          # carry .whl/library .whl/pipeline .gpu_data/cifar10-jpeg
#     benchmarks/gpu_pipeline.sh --device cpu --smoke    # here: the same on tiny sizes
#
# Installs the carried wheels (device README's --target line), records `pip check` for them,
# then runs benchmarks/gpu_pipeline.py: every stage for real (dvc repro -s in a temporary
# copy, or the stage commands if DVC does not import), pretrain again with compile, one
# SIGKILL mid-pretrain and a rerun. Results: $OUT/pipeline.json, $OUT/pipeline.log,
# $OUT/run.log, $OUT/pip_check.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
DEVICE=cuda EXTRA=()
while [ $# -gt 0 ]; do
    case $1 in
    --device) DEVICE=$2 && shift ;;
    --smoke) EXTRA=(--smoke --epochs 3 --batch 64 --workers 2) ;;
    *) echo "usage: $0 [--device cuda|cpu] [--smoke]" >&2 && exit 2 ;;
    esac
    shift
done
OUT=${OUT:?set OUT to the folder for the results}
export PYTHONUNBUFFERED=1 DO_NOT_TRACK=1
exec > >(tee -a "$OUT/run.log") 2>&1
PY=${PYTHON:-python3}
if [ "$DEVICE" = cuda ] && [ -d .whl/library ]; then
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site .whl/library/*.whl .whl/pipeline/*.whl || exit 1
    export PYTHONPATH=/tmp/site
    $PY -m pip check >"$OUT/pip_check.txt" 2>&1
fi
$PY benchmarks/gpu_torch_apis.py simclr benchmarks tasks flows # this torch has what we call
command -v git >/dev/null && git --version || echo "no git on this machine"
timeout 540 $PY benchmarks/gpu_pipeline.py --data .gpu_data/cifar10-jpeg --out-dir "$OUT" \
    --device "$DEVICE" "${EXTRA[@]}"
echo "== gpu_pipeline.py status $? after ${SECONDS}s"

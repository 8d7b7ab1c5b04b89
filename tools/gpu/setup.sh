# Sourced by check.sh and pipeline.sh after their options: `source tools/gpu/setup.sh LOG
# GROUP...`. Tees all output to $OUT/LOG, sets PY, and on CUDA installs the carried wheel
# groups (.whl/GROUP, from prepare.sh) with the device README's --target line, writes
# `pip check` for them to $OUT/pip_check.txt, and checks that this torch has what we call.
OUT=${OUT:?set OUT to the folder for the results}
export PYTHONUNBUFFERED=1 DO_NOT_TRACK=1
exec > >(tee -a "$OUT/$1") 2>&1
shift
PY=${PYTHON:-python3}
if [ "$DEVICE" = cuda ] && [ -d .whl/library ]; then
    wheels=()
    for group in "$@"; do wheels+=(.whl/"$group"/*.whl); done
    $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
        --target /tmp/site "${wheels[@]}" || exit 1
    export PYTHONPATH=/tmp/site
    $PY -m pip check >"$OUT/pip_check.txt" 2>&1
fi
$PY -m tools.gpu.torch_apis simclr benchmarks tasks flows

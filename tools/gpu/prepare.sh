#!/usr/bin/env bash
# Readies, on the CPU machine, what the GPU checks of issues 21 and 22 carry to a bare H200
# (tools/gpu/README.md). Run from the repository root of the checkout the
# device tool sends (the session's own), after `make install-dev`:
#
#     CIFAR10_DEV=/path/to/cifar10-dev tools/gpu/prepare.sh
#
# It writes, all ignored through .git/info/exclude:
#   .whl/library   pydantic, ruamel.yaml and what they need (simclr/ imports them)
#   .whl/lightly   lightly 1.6.0 and what it needs (the reference of issue 21)
#   .whl/pipeline  prefect, dvc, dvclive, great-expectations and what they need (issue 22)
#   .gpu_data/cifar10dev    the 12,000 dev images in the prepared format (issue 21)
#   .gpu_data/cifar10-jpeg  500 train + 100 val JPEGs per class (issue 22, prepared there)
# Wheels are pinned to the versions installed here (tools/gpu/wheels.py), for CPython 3.12
# manylinux x86-64; a pin with no such wheel (a pure-Python sdist) is built into one here.
# Then it prints what each check's `carry` adds to the tree that travels, against 64 MiB.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
PY=${PYTHON:-.venv/bin/python}
DEV=${CIFAR10_DEV:?set CIFAR10_DEV to the CIFAR-10 dev folder (train/ and val/ of class folders)}
LIMIT=$((64 * 1024 * 1024))

exclude=$(git rev-parse --git-path info/exclude)
mkdir -p "$(dirname "$exclude")"
for pattern in /.whl/ /.gpu_data/; do
    grep -qxF "$pattern" "$exclude" 2>/dev/null || echo "$pattern" >>"$exclude"
done

platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
target=(--only-binary=:all: --python-version 3.12 --implementation cp "${platforms[@]}")

fetch_group() { # $1: group; downloads every missing pin, then builds what has no wheel
    local dir=.whl/$1 pins
    mkdir -p "$dir"
    pins=$("$PY" -m tools.gpu.wheels "$1" --missing "$dir")
    [ -z "$pins" ] && return 0
    # One call for all pins; it stops at the first pin without a wheel, so then one by one.
    if ! python3 -m pip download -q --no-deps "${target[@]}" -d "$dir" $pins 2>/dev/null; then
        for pin in $("$PY" -m tools.gpu.wheels "$1" --missing "$dir"); do
            python3 -m pip download -q --no-deps "${target[@]}" -d "$dir" "$pin" 2>/dev/null ||
                python3 -m pip wheel -q --no-deps --no-binary=:all: -w "$dir" "$pin"
        done
    fi
    pins=$("$PY" -m tools.gpu.wheels "$1" --missing "$dir")
    [ -z "$pins" ] || { echo "gpu_prepare: no wheel for: $pins" >&2; return 1; }
}

for group in library lightly pipeline; do
    fetch_group "$group"
    echo "$group: $(ls .whl/$group/*.whl | wc -l) wheels"
done

[ -f .gpu_data/cifar10dev/classes.json ] || "$PY" -m tools.gpu.data arrays .gpu_data/cifar10dev --data "$DEV"
[ -d .gpu_data/cifar10-jpeg ] || "$PY" -m tools.gpu.data jpegs .gpu_data/cifar10-jpeg --data "$DEV"

bytes() { find "$@" -type f -printf '%s\n' | awk '{s += $1} END {print s + 0}'; }
tree=$(git ls-files -z --cached --others --exclude-standard | xargs -0 stat -c %s 2>/dev/null |
    awk '{s += $1} END {print s + 0}')
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
echo "tree that travels without carry: $(mib "$tree")"
for path in .whl/library .whl/lightly .whl/pipeline .gpu_data/cifar10dev .gpu_data/cifar10-jpeg; do
    echo "  $path: $(mib "$(bytes "$path")")"
done
check() { # $1: issue; the rest: its carry list
    local issue=$1 total
    shift
    total=$((tree + $(bytes "$@")))
    if [ "$total" -le "$LIMIT" ]; then verdict=fits; else verdict="DOES NOT FIT"; fi
    echo "issue $issue carry [$*]: $(mib "$total") of 64 MiB: $verdict"
    [ "$total" -le "$LIMIT" ]
}
ok=0
check 21 .whl/library .whl/lightly .gpu_data/cifar10dev || ok=1
check 22 .whl/library .whl/pipeline .gpu_data/cifar10-jpeg || ok=1
exit $ok

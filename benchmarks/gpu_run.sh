#!/usr/bin/env bash
# The prepared GPU run (at most 9 minutes on one GPU): see benchmarks/gpu_run.py for the steps.
# Made for a bare machine: a python3 with torch, the project not installed, no network.
#   benchmarks/gpu_run.sh                 # CIFAR-10 from local/cifar10-train-jpeg.tar.gz
#   benchmarks/gpu_run.sh --data DIR [--seeds 3] [--he-resnet20]
#   OUT=/tmp/out benchmarks/gpu_run.sh --dry-run   # every step at toy size on the CPU
# Results: $OUT/<step>.json and $OUT/gpu_run.log (results/gpu/ when OUT is unset).
# Optional, in the git-ignored local/ folder of the checkout (take it along to the machine):
#   local/cifar10-train-jpeg.tar.gz   the CIFAR-10 training JPEGs, train/<class>/<image>.jpg
#   local/wheels/*.whl                packages the machine lacks (nbval, ipykernel and their
#                                     needs, grad-cam: benchmarks/gpu_wheels.sh fetches them),
#                                     installed into a temporary folder (GPU_RUN_WHEELS=DIR
#                                     takes them from DIR instead)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
cd "$repo"
# The project is not installed there: it is imported from the checkout, here and in every
# subprocess and notebook kernel.
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
out="${OUT:-$repo/results/gpu}"
mkdir -p "$out"
log="$out/gpu_run.log"
: >"$log"
wheels="${GPU_RUN_WHEELS:-local/wheels}"
if compgen -G "$wheels/*.whl" >/dev/null; then
    site="$(mktemp -d)"
    if python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --target "$site" "$wheels"/*.whl >>"$log" 2>&1; then
        export PYTHONPATH="$PYTHONPATH:$site"
        echo "gpu_run.sh: installed $(ls "$wheels"/*.whl | wc -l) wheels from $wheels" | tee -a "$log"
    else
        echo "gpu_run.sh: the carried wheels did not install; steps needing them are skipped" \
            | tee -a "$log"
    fi
fi
python3 benchmarks/gpu_run.py --out "$out" "$@" 2>&1 | tee -a "$log"

#!/usr/bin/env bash
# Wheels of what the notebooks need beyond the GPU machine's packages (nbval, ipykernel and
# their dependencies, grad-cam), for gpu_run.sh to install there without network.
#
#   benchmarks/gpu_wheels.sh [DEST] [PYTHON_VERSION] [EXTRA...]   # default local/wheels, 3.12
#
# EXTRA: more packages, for an environment that lacks some of the GPU machine's own (the
# bare-environment dry run passes attrs, psutil and coverage).
#
# DEST defaults to the git-ignored local/wheels/, which travels with the working tree (about
# 15 MB). --no-deps: each needed package is named below, and the ones the GPU machine already
# has (numpy, torch, pyyaml, psutil, pygments, attrs, python-dateutil, opencv-python-headless,
# ...) are left out, so nothing there is replaced.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
dest="${1:-$repo/local/wheels}"
version="${2:-3.12}"
extra=("${@:3}")
packages=(
    # nbval and the Jupyter kernel machinery
    nbval nbformat fastjsonschema jsonschema jsonschema-specifications referencing rpds-py
    jupyter_client jupyter_core platformdirs traitlets pyzmq tornado
    ipykernel comm debugpy nest_asyncio matplotlib-inline
    ipython ipython-pygments-lexers decorator jedi parso pexpect ptyprocess prompt_toolkit
    wcwidth stack_data executing asttokens pure_eval
    # Grad-CAM (notebook 07); cv2 comes from the machine's opencv-python-headless
    grad-cam ttach
    "${extra[@]}"
)
mkdir -p "$dest"
python3 -m pip download -q --no-deps --only-binary=:all: --implementation cp \
    --python-version "$version" --platform manylinux_2_28_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d "$dest" "${packages[@]}"
echo "gpu_wheels: $(ls "$dest"/*.whl | wc -l) wheels, $(du -sh "$dest" | cut -f1) in $dest"

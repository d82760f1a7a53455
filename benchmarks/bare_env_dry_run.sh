#!/usr/bin/env bash
# The prepared GPU run's dry run, in an environment like the GPU machine's, on this CPU.
#
# The GPU machine has a bare python3 with torch, torchvision, timm, seaborn, pytest,
# scikit-learn, tqdm, pandas and matplotlib; no nbval, ipykernel, jupyter or grad-cam; the
# project not installed; and only $OUT comes back (8 files at most, 2 folders deep at most).
# This script builds such a virtual environment (once: it is reused while it is complete),
# runs `OUT=... benchmarks/gpu_run.sh --dry-run` with it, and checks: exit status 0, every
# step's JSON "ok" or "skipped" with a reason, at most 8 files under $OUT.
#
#   benchmarks/bare_env_dry_run.sh [VENV_DIR]   # default /tmp/hands_on_resnet_bare_env
#   WITH_WHEELS=1 benchmarks/bare_env_dry_run.sh  # also carry nbval, ipykernel and grad-cam
#                                                 # (gpu_wheels.sh, for this Python): the
#                                                 # notebook step runs instead of skipping
#   TORCH_VERSION=2.11.0 TORCHVISION_VERSION=0.26.0 benchmarks/bare_env_dry_run.sh /tmp/env211
#
# Creating the environment downloads torch (minutes); later runs take about as long as the
# dry run itself. CI does not run this (tests/test_benchmarks.py checks its structure).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
venv="${1:-${BARE_VENV:-/tmp/hands_on_resnet_bare_env}}"
# The GPU machine's packages, and nothing of the project's own list beyond them.
packages=(
    "torch==${TORCH_VERSION:-2.14.1}" "torchvision==${TORCHVISION_VERSION:-0.29.1}"
    timm seaborn pytest scikit-learn tqdm pandas matplotlib
)
absent=(nbval ipykernel jupyter jupyter_client pytorch_grad_cam helpers)

if [[ ! -f "$venv/.complete" ]]; then
    echo "bare_env_dry_run: creating $venv with: ${packages[*]}"
    python3 -m venv --clear "$venv"
    "$venv/bin/python3" -m pip install -q "${packages[@]}"
    touch "$venv/.complete"
fi

# Run from outside the checkout, so that only PYTHONPATH (set by gpu_run.sh) can find helpers.
cd /tmp
"$venv/bin/python3" - "${absent[@]}" <<'PY'
import importlib.util, sys
present = [name for name in sys.argv[1:] if importlib.util.find_spec(name) is not None]
if present:
    sys.exit(f"bare_env_dry_run: not a bare environment, it has {present}")
PY

wheels=()
if [[ "${WITH_WHEELS:-0}" == 1 ]]; then
    pyver="$("$venv/bin/python3" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    dir="/tmp/hands_on_resnet_wheels_cp${pyver/./}"
    # attrs, psutil, coverage: the GPU machine has them, this minimal environment does not.
    compgen -G "$dir/*.whl" >/dev/null \
        || "$repo/benchmarks/gpu_wheels.sh" "$dir" "$pyver" attrs psutil coverage
    wheels=(GPU_RUN_WHEELS="$dir")
fi

out="$(mktemp -d /tmp/bare_env_out_XXXXXX)"
echo "bare_env_dry_run: OUT=$out"
status=0
env -u PYTHONPATH -u VIRTUAL_ENV PATH="$venv/bin:$PATH" OUT="$out" "${wheels[@]}" \
    "$repo/benchmarks/gpu_run.sh" --dry-run || status=$?
if [[ $status -ne 0 ]]; then
    echo "bare_env_dry_run: FAILED: gpu_run.sh exited $status"
    exit 1
fi
"$venv/bin/python3" - "$out" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
files = sorted(p for p in out.rglob("*") if p.is_file())
problems = []
if len(files) > 8:
    problems.append(f"{len(files)} files under $OUT, the GPU machine returns 8")
for path in files:
    if len(path.relative_to(out).parts) > 3:
        problems.append(f"{path} is more than 2 folders down")
steps = [p for p in files if p.suffix == ".json"]
if not steps:
    problems.append("no step wrote its JSON")
for path in steps:
    record = json.loads(path.read_text())
    status, why = record.get("status"), record.get("why")
    line = f"  {path.name:22s} {status}" + (f" ({why})" if why else "")
    if status == "skipped" and not why:
        problems.append(f"{path.name}: skipped without a reason")
    elif status not in ("ok", "skipped"):
        problems.append(f"{path.name}: status {status}: {record.get('tail', '')[-800:]}")
    for run in record.get("runs", []) + record.get("notebooks", []):
        line += f"\n    {run['step']}: {run['status']} in {run.get('seconds', 0)} s"
    print(line)
print(f"  {len(files)} files under $OUT: {', '.join(p.name for p in files)}")
if problems:
    sys.exit("bare_env_dry_run: FAILED:\n  " + "\n  ".join(problems))
print("bare_env_dry_run: passed")
PY

#!/usr/bin/env bash
# The prepared GPU run (about 8 minutes on one GPU): see benchmarks/gpu_run.py for the steps.
#   benchmarks/gpu_run.sh --data /path/to/cifar10/train [--test-folder DIR] [--seeds 3]
#   benchmarks/gpu_run.sh --dry-run      # every step at toy size on the CPU
set -euo pipefail
cd "$(dirname "$0")/.."
exec python benchmarks/gpu_run.py "$@"

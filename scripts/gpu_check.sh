#!/usr/bin/env bash
# The prepared GPU check (issue 17): the gpu profile, both tables, every row, seed 0, into results/gpu/,
# with the GPU named in each result's provenance. Needs the project's .venv on the GPU machine.
# Usage: scripts/gpu_check.sh [seconds]   (default 540: under the 10-minute goal, so an overrun shows)
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
start=$(date +%s)
status=0
timeout "${1:-540}" .venv/bin/leadrank run --profile gpu --jobs 4 --out results/gpu || status=$?
echo "gpu profile: exit ${status}, $(( $(date +%s) - start )) s wall"
exit "${status}"

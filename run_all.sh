#!/usr/bin/env bash
# Reproduce the benchmark: builds .venv/ on first use, then runs the profile
# (default: quick) and renders results/table1.md and results/table2.md.
# Extra arguments go to `leadrank run`, e.g. ./run_all.sh --profile standard
set -euo pipefail
cd "$(dirname "$0")"
./scripts/bootstrap.sh
# Keep compiled bytecode: each parallel job process would otherwise recompile torch from source.
unset PYTHONDONTWRITEBYTECODE
exec .venv/bin/leadrank run "$@"

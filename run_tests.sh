#!/usr/bin/env bash
# Builds .venv/ on first use (same as run_all.sh) and runs the pytest suite.
# Extra arguments go to pytest, e.g. ./run_tests.sh -k metrics
set -euo pipefail
cd "$(dirname "$0")"
./scripts/bootstrap.sh
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
exec .venv/bin/python -m pytest -q "$@"

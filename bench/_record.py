"""One JSON line per bench figure: machine info, the figure, appended to ``results/bench/<bench>.jsonl``.

Absolute times depend on the machine and on whoever else shares its CPU, so
every line carries the machine it was measured on; ratios meant to be compared
with a goal are measured within one run.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import time
from functools import cache
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "results" / "bench"


@cache
def machine() -> dict:
    """CPU model, cores and the vector extensions that matter for numpy/torch kernels."""
    lscpu = dict(line.split(":", 1) for line in _run(["lscpu"]).splitlines() if ":" in line)
    flags = set(lscpu.get("Flags", "").split())
    return {"cpu": lscpu.get("Model name", platform.processor()).strip(), "cores": os.cpu_count(),
            "avx512": any(f.startswith("avx512") for f in flags), "amx": any(f.startswith("amx") for f in flags),
            "python": platform.python_version(), "numpy": version("numpy"), "pyarrow": version("pyarrow")}


def record(bench: str, figures: dict) -> dict:
    """Print one JSON line (machine, commit, time, figures) and append it to results/bench/<bench>.jsonl."""
    commit = _run(["git", "rev-parse", "--short", "HEAD"]).strip()
    if _run(["git", "status", "--porcelain", "--untracked-files=no"]).strip():
        commit += "-dirty"  # measured on uncommitted changes
    line = {"bench": bench, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "commit": commit,
            "machine": machine(), **figures}
    text = json.dumps(line)
    print(text, flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / f"{bench}.jsonl", "a") as f:
        f.write(text + "\n")
    return line


def _run(cmd: list[str]) -> str:
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""

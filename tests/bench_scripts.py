"""The bench scripts as modules: bench/ is a folder of scripts, not a package, and the tests that check
a script's own counts (FLOPs, shares, renderings) load it from its file."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load_bench(name: str) -> ModuleType:
    """``bench/<name>.py`` as a module named ``bench_<name>`` (its own imports resolved as the script's)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

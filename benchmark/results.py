"""Result files: the contract between runs, tables, plots and reviewers.

Layout (names are fixed; tools read them)::

    <out>/runs/<dataset>/<method>/seed<k>.json            config, provenance, timings, metrics
    <out>/runs/<dataset>/<method>/seed<k>.scores.parquet  lead_id, score, label for every test lead

Both are written atomically (temporary file + rename), scores first and the
JSON last: a JSON on disk means the job finished, so a killed run loses at most
the job in flight and a rerun skips finished ones.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.metrics import Estimate

PACKAGES = ("leadrank-bench", "numpy", "pandas", "pyarrow", "scikit-learn", "torch", "deepctr-torch", "lightgbm",
            "transformers", "peft", "accelerate")


@dataclass
class RunRecord:
    dataset: str
    method: str
    seed: int
    table: str
    status: str  # "ok" or "n/a"
    family: str = ""
    in_paper: bool = True
    reason: str = ""  # why a method is n/a on this dataset
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    n_test: int = 0
    n_pos: int = 0
    dataset_info: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)

    def estimate(self, key: str) -> Estimate:
        return Estimate(**self.metrics[key])

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=False, default=_jsonable)


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def run_dir(out: Path, dataset: str, method: str) -> Path:
    return Path(out) / "runs" / dataset / method


def json_path(out: Path, dataset: str, method: str, seed: int) -> Path:
    return run_dir(out, dataset, method) / f"seed{seed}.json"


def scores_path(out: Path, dataset: str, method: str, seed: int) -> Path:
    return run_dir(out, dataset, method) / f"seed{seed}.scores.parquet"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_run(out: Path, record: RunRecord, scores: pd.DataFrame | None) -> Path:
    """Scores first, JSON last (the JSON marks the job as finished)."""
    for stale in run_dir(out, record.dataset, record.method).glob(f".seed{record.seed}.*.tmp"):
        stale.unlink(missing_ok=True)  # left by a job of this seed that was killed mid-write
    if scores is not None:
        path = scores_path(out, record.dataset, record.method, record.seed)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            scores.to_parquet(tmp, index=False)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    jp = json_path(out, record.dataset, record.method, record.seed)
    atomic_write_bytes(jp, (record.to_json() + "\n").encode())
    return jp


def read_run(path: Path) -> RunRecord:
    return RunRecord(**json.loads(Path(path).read_text()))


def read_scores(out: Path, record: RunRecord) -> pd.DataFrame:
    return pd.read_parquet(scores_path(out, record.dataset, record.method, record.seed))


def finished(out: Path, dataset: str, method: str, seed: int, fingerprint: str) -> bool:
    """True when this job has a result for the same data (a changed dataset reruns)."""
    jp = json_path(out, dataset, method, seed)
    if not jp.is_file():
        return False
    try:
        return read_run(jp).fingerprint == fingerprint
    except (json.JSONDecodeError, TypeError):
        return False


def all_runs(out: Path) -> list[RunRecord]:
    return [read_run(p) for p in sorted((Path(out) / "runs").glob("*/*/seed*.json"))]


def provenance() -> dict[str, Any]:
    """Git commit and dirty flag, package versions, CPU/GPU model."""
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=10,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    versions = {}
    for p in PACKAGES:
        try:
            versions[p] = version(p)
        except PackageNotFoundError:
            pass
    gpu = ""
    try:
        import torch
        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return {"git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "python": platform.python_version(), "packages": versions, "cpu": _cpu_model(), "gpu": gpu,
            "cpus": os.cpu_count()}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

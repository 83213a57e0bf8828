"""Result files: the contract between runs, tables, plots and reviewers.

Layout (names are fixed; tools read them)::

    <out>/runs/<dataset>/<method>/seed<k>.json            config, provenance, timings, metrics
    <out>/runs/<dataset>/<method>/seed<k>.scores.parquet  lead_id, score, label, weight for every scored test lead

    <out>/runs/<dataset>/<method>/seed<k>.log             the traceback, where the job failed

All are written atomically (temporary file + rename), scores first and the
JSON last: a JSON on disk means the job ended (``ok``, ``n/a`` or ``failed``),
so a killed run loses at most the job in flight; a rerun reuses the ``ok`` and
``n/a`` ones whose data, test sample and resolved settings are unchanged
(:func:`rerun_reason`) and reruns the others, failed ones included.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.metrics import Estimate
from feature_store.errors import DataError
from feature_store.files import atomic_path, atomic_write_text

FORMAT_VERSION = 1  # of the result files; a reader refuses files of a newer format instead of misreading them
PACKAGES = ("leadrank-bench", "numpy", "pandas", "pyarrow", "scikit-learn", "torch", "deepctr-torch", "lightgbm",
            "transformers", "peft", "accelerate")


@dataclass
class RunRecord:
    dataset: str
    method: str
    seed: int
    table: str
    status: str  # "ok", "n/a" (the data cannot serve the method) or "failed" (it raised: see the .log)
    family: str = ""
    in_paper: bool = False
    reason: str = ""  # why a method is n/a on this dataset, or the one-line error it failed with
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)
    n_test: int = 0
    n_pos: int = 0
    dataset_info: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what validating the data warned about (the table repeats it)
    fingerprint: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

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


def log_path(out: Path, dataset: str, method: str, seed: int) -> Path:
    return run_dir(out, dataset, method) / f"seed{seed}.log"


def write_run(out: Path, record: RunRecord, scores: pd.DataFrame | None, log: str | None = None) -> Path:
    """Scores (or the failure's traceback) first, JSON last (the JSON marks the job as ended)."""
    for stale in run_dir(out, record.dataset, record.method).glob(f".seed{record.seed}.*.tmp*"):
        stale.unlink(missing_ok=True)  # left by a job of this seed that was killed mid-write
    log_file = log_path(out, record.dataset, record.method, record.seed)
    if log is not None:
        atomic_write_text(log_file, log)
    else:
        log_file.unlink(missing_ok=True)  # from an earlier failed try of this job
    if scores is not None:
        with atomic_path(scores_path(out, record.dataset, record.method, record.seed)) as tmp:
            scores.to_parquet(tmp, index=False)
    jp = json_path(out, record.dataset, record.method, record.seed)
    atomic_write_text(jp, record.to_json() + "\n")
    return jp


def read_run(path: Path) -> RunRecord:
    data = json.loads(Path(path).read_text())
    if data.get("format_version", 1) > FORMAT_VERSION:
        raise DataError(f"written by a newer leadrank-bench (result format {data['format_version']}, this one "
                        f"reads up to {FORMAT_VERSION})", file=str(path), hint="upgrade leadrank-bench to read it")
    try:
        return RunRecord(**data)
    except TypeError as e:
        raise DataError(f"not a result file of this leadrank-bench: {e}", file=str(path)) from None


def read_scores(out: Path, record: RunRecord) -> pd.DataFrame:
    return pd.read_parquet(scores_path(out, record.dataset, record.method, record.seed))


FULL_SAMPLE = {"design": "full"}  # every test lead scored, weight 1 (results from before the key existed)
NO_RESULT = "no result yet"


def rerun_reason(out: Path, dataset: str, method: str, seed: int, fingerprint: str,
                 test_sample: dict[str, Any], settings: dict[str, Any]) -> str:
    """Why this job must run ('' when its result can be reused).

    A result is reused only when it is ``ok`` or ``n/a`` and was computed on the same data
    (fingerprint), the same test sample and the same resolved settings (``config.method_settings``:
    every section the method reads, after profile, ``extend:``, variant and ``--set``, its variant's
    options and what its h_text embedding depends on: ``benchmark.runner.resolved_settings``); the seed
    is in the file's name. Code is not part of the key: the record names the git commit it ran at."""
    jp = json_path(out, dataset, method, seed)
    if not jp.is_file():
        return NO_RESULT
    try:
        record = read_run(jp)
    except json.JSONDecodeError:
        return "its result file is unreadable"
    if record.status == "failed":
        return "it failed last time"
    if record.fingerprint != fingerprint:
        return "the data changed"
    if record.dataset_info.get("test_sample", FULL_SAMPLE) != test_sample:
        return "the test sample changed (eval.test_positives / test_negatives / subsample_seed)"
    recorded = record.config.get("method_settings")
    if recorded is None:
        return "its result does not record the settings it ran with"
    return settings_change(recorded, settings)


def settings_change(before: dict[str, Any], now: dict[str, Any]) -> str:
    """'lightgbm.max_rounds 2000 → 20, ...': every setting that differs ('' when none does)."""
    old, new = _flat(before), _flat(json.loads(json.dumps(now, default=_jsonable)))  # as a record holds it
    return ", ".join(f"{k} {_show(old.get(k, _ABSENT))} → {_show(new.get(k, _ABSENT))}"
                     for k in sorted(old.keys() | new.keys()) if old.get(k, _ABSENT) != new.get(k, _ABSENT))


_ABSENT = object()


def _flat(settings: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'llm': {'lr': 1}} -> {'llm.lr': 1}: nested sections as dotted keys, the form --set takes."""
    out = {}
    for key, value in settings.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _show(value: Any) -> str:
    return "(unset)" if value is _ABSENT else json.dumps(value)


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

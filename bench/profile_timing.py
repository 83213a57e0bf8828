"""A profile end to end, split by phase: what ``./run_all.sh [--profile P]`` costs on this machine.

Runs ``leadrank run`` on the profile (quick by default; ``--profile standard``) into a fresh results
folder with a fresh data folder (no generated world, no h_text, backbone or prefix cache), as
``./run_all.sh`` does on a fresh clone once ``.venv/`` exists, and records in
``results/bench/<profile>_profile.jsonl``:

* ``generate``: generating the profile's worlds (timed on its own, first, wall);
* ``h_text_embedding``: computing the h_text embedding (``h_text_compute_s`` of its
  cache entry, as the result files of the rows that read it record it);
* ``llm_jobs``: prepare + fit + score + metrics of the LLM rows, summed (the backbone's
  one-time conversion and the prefix cache's fills included);
* ``other_jobs``: the same for every other row, summed (their h_text reading excluded).

With ``--jobs`` above 1 (the default on 2 cores for quick: ``runner.default_jobs``) jobs overlap,
so the job phases are busy seconds that add up to more than the wall time; the goal is on the wall
time (``total_s``), which also holds loading and rendering the tables. Goals: quick 600 s, standard
7,200 s (2 cores).

Usage::

    .venv/bin/python bench/profile_timing.py             # quick: ~8-15 min on 2 cores; records a line
    .venv/bin/python bench/profile_timing.py --profile standard --progress   # ~1.5 h on 2 cores
    .venv/bin/python bench/profile_timing.py --no-record --set ctr.epochs=1
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import record  # noqa: E402

from benchmark import runner, tables  # noqa: E402
from benchmark.profile import load_profile  # noqa: E402
from benchmark.results import all_runs  # noqa: E402

GOALS_S = {"quick": 600, "standard": 7200}  # wall seconds on 2 cores


def phases(out: Path) -> dict[str, float]:
    """Busy seconds of the h_text embedding, the LLM jobs and the other jobs, from the result files."""
    embeddings: dict[str, float] = {}
    llm = other = 0.0
    for r in all_runs(out):
        busy = sum(r.timings.values())
        if "h_text_compute_s" in r.info:
            embeddings[r.info["h_text_cache"]] = r.info["h_text_compute_s"]
            if r.info.get("h_text_cache_hit") is False:
                busy -= r.info["h_text_compute_s"]
        if r.family == "llm":
            llm += busy
        else:
            other += busy
    return {"h_text_embedding": sum(embeddings.values()), "llm_jobs": llm, "other_jobs": other}


def fresh_clone(repo: Path) -> bool:
    """Whether ``repo`` is as ``git clone`` + ``scripts/bootstrap.sh`` leave it: no change to a tracked file,
    no untracked file, and no ignored path but what the bootstrap writes (``.venv/``, the editable install's
    ``*.egg-info/``) and Python's bytecode caches: no ``data/``, no earlier results the run could reuse."""
    status = subprocess.run(["git", "status", "--porcelain", "--ignored"], cwd=repo, capture_output=True,
                            text=True, check=True).stdout.splitlines()
    allowed = (".venv", "__pycache__", ".egg-info")
    return all(line.startswith("!! ") and line[3:].rstrip("/").endswith(allowed) for line in status)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick", choices=sorted(GOALS_S))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--progress", action="store_true", help="progress bars and each job's result on stderr")
    p.add_argument("--tmp", type=Path, help="where the fresh data and results folders go (default: the system's)")
    p.add_argument("--keep-results", type=Path, metavar="DIR",
                   help="copy the run's results folder to DIR (to compare its scores with the committed ones)")
    p.add_argument("--no-record", action="store_true", help="print the figures only")
    p.add_argument("--jobs", type=int, help="parallel jobs (default: what ./run_all.sh uses, runner.default_jobs)")
    a = p.parse_args()
    clean = fresh_clone(Path(__file__).resolve().parents[1])  # before the run writes anything
    with tempfile.TemporaryDirectory(prefix=f"leadrank-{a.profile}-", dir=a.tmp) as tmp:
        profile = load_profile(a.profile, [f"data_dir={tmp}/data", *a.overrides])
        t0 = time.perf_counter()
        for entry in profile.datasets:
            runner.resolve_dataset(entry, profile.data_dir)
        t1 = time.perf_counter()
        out = Path(tmp) / "results"
        jobs = a.jobs or runner.default_jobs(profile)
        runner.run(profile, out, progress=a.progress, jobs=jobs)
        tables.write_tables(out)
        t2 = time.perf_counter()
        ph = phases(out)
        if a.keep_results:
            shutil.copytree(out, a.keep_results, dirs_exist_ok=True)
    ph = {"generate": t1 - t0, **ph}
    figures = {"total_s": round(t2 - t0, 1), "jobs": jobs, "fresh_clone": clean, "overrides": a.overrides,
               "phases_s": {k: round(v, 1) for k, v in ph.items()}, "goals": {"total_s": GOALS_S[a.profile]}}
    if a.no_record:
        print(figures)
    else:
        record(f"{a.profile}_profile", figures)


if __name__ == "__main__":
    main()

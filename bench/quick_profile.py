"""The quick profile end to end, split by phase: what ``./run_all.sh`` costs on this machine.

Runs ``leadrank run`` on the quick profile into a fresh results folder with a
fresh data folder (no generated world, no h_text or backbone cache), one seed, as
``./run_all.sh`` does on a fresh clone once ``.venv/`` exists, and records:

* ``generate``: generating the profile's worlds (timed on its own, first);
* ``h_text_embedding``: the ``prepare_s`` of the job that computed the h_text
  embedding (cache miss), read from its result file;
* ``llm_jobs``: prepare + fit + score + metrics of the LLM rows;
* ``other_jobs``: the rest of the wall time (the other rows, loading, tables, plots).

The phases come from the result files' own timings, so they add up to the wall
time only up to loading and rendering, which land in ``other_jobs``.

Usage::

    .venv/bin/python bench/quick_profile.py             # ~15-35 min on 2 cores; records a line
    .venv/bin/python bench/quick_profile.py --no-record --set ctr.epochs=1
"""

from __future__ import annotations

import argparse
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

GOAL_S = 600


def phases(out: Path) -> dict[str, float]:
    """h_text embedding and LLM-job seconds from the result files of a run."""
    h_text = llm = 0.0
    for r in all_runs(out):
        t = r.timings
        if r.info.get("h_text_cache_hit") is False:
            h_text += t.get("prepare_s", 0.0)
        if r.family == "llm":
            llm += sum(t.values())
    return {"h_text_embedding": h_text, "llm_jobs": llm}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--no-record", action="store_true", help="print the figures only")
    a = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="leadrank-quick-") as tmp:
        profile = load_profile("quick", [f"data_dir={tmp}/data", *a.overrides])
        t0 = time.perf_counter()
        for entry in profile.datasets:
            runner.resolve_dataset(entry, profile.data_dir)
        t1 = time.perf_counter()
        out = Path(tmp) / "results"
        runner.run(profile, out, progress=False)
        tables.write_tables(out)
        t2 = time.perf_counter()
        ph = phases(out)
    ph = {"generate": t1 - t0, **ph}
    ph["other_jobs"] = (t2 - t1) - ph["h_text_embedding"] - ph["llm_jobs"]
    figures = {"total_s": round(t2 - t0, 1), "fresh_clone": False, "overrides": a.overrides,
               "phases_s": {k: round(v, 1) for k, v in ph.items()}, "goals": {"total_s": GOAL_S}}
    if a.no_record:
        print(figures)
    else:
        record("quick_profile", figures)


if __name__ == "__main__":
    main()

"""World generation at scale: leads per second per core and peak memory (issue 17).

Goals: >= 10k leads/s per core; peak RSS <= 3 GB at 6.14M leads and
RSS(6.14M) / RSS(1M) <= 1.2 (generation streams blocks to Parquet, so memory
must stay flat in the number of leads).

Each size runs ``feature_store.synthetic.generate`` in its own subprocess, so
the peak RSS (from ``wait4``) is that size's alone and includes the
interpreter and imports. "Per core" = leads per CPU-second (user + system,
all threads) of ``generate`` itself; the wall rate is given beside it. BLAS
and OpenMP are pinned to one thread. One JSON line per size is printed and
appended to ``results/bench/generate.jsonl``.

    .venv/bin/python bench/generate_scale.py [--big] [--sizes 100000,1000000] [--world industrial]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from _record import record  # noqa: E402

BIG = 6_140_000  # the paper's industrial data set
GOALS = {"leads_per_s_per_core": 10_000, "peak_rss_mb_at_6.14M": 3072, "rss_ratio_6.14M_to_1M": 1.2}
ONE_THREAD = {k: "1" for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def child(world: str, leads: int, seed: int, out: str) -> None:
    """Run inside the subprocess: generate and report wall and CPU seconds of ``generate`` alone."""
    from feature_store.synthetic import GENERATOR_VERSION, generate

    wall, cpu = time.perf_counter(), time.process_time()
    generate(world, leads, seed, out, progress=False)
    print(json.dumps({"seconds": time.perf_counter() - wall, "cpu_seconds": time.process_time() - cpu,
                      "generator_version": GENERATOR_VERSION}))


def measure(world: str, leads: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as out:
        cmd = [sys.executable, __file__, "--child", world, str(leads), str(seed), out]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, env={**os.environ, **ONE_THREAD}, text=True)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage; ru_maxrss in KiB on Linux
        if status:
            raise SystemExit(f"generation of {leads:,} leads failed (status {status})")
        size = sum(os.path.getsize(os.path.join(out, f)) for f in os.listdir(out))
    inner = json.loads(stdout.strip().splitlines()[-1])
    return {"world": world, "leads": leads, "seed": seed, "generator_version": inner["generator_version"],
            "seconds": round(inner["seconds"], 2), "cpu_seconds": round(inner["cpu_seconds"], 2),
            "leads_per_s": round(leads / inner["seconds"]),
            "leads_per_s_per_core": round(leads / inner["cpu_seconds"]),
            "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "peak_rss_mb": round(usage.ru_maxrss / 1024), "disk_mb": round(size / 2 ** 20)}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        world, leads, seed, out = sys.argv[2:6]
        return child(world, int(leads), int(seed), out)
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="100000,1000000")
    p.add_argument("--big", action="store_true", help=f"also generate {BIG:,} leads (~6 min on one core)")
    p.add_argument("--world", default="industrial")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args()
    sizes = [int(s) for s in a.sizes.split(",")] + ([BIG] if a.big else [])
    rss: dict[int, int] = {}
    for leads in sizes:
        figures = measure(a.world, leads, a.seed)
        rss[leads] = figures["peak_rss_mb"]
        figures["goals"] = {"leads_per_s_per_core": GOALS["leads_per_s_per_core"]}
        if leads == BIG:
            figures["goals"]["peak_rss_mb"] = GOALS["peak_rss_mb_at_6.14M"]
            if 1_000_000 in rss:  # ratios only within one run
                figures["rss_ratio_to_1M"] = round(rss[BIG] / rss[1_000_000], 3)
                figures["goals"]["rss_ratio_to_1M"] = GOALS["rss_ratio_6.14M_to_1M"]
        record("generate", figures)


if __name__ == "__main__":
    main()

"""Metrics at scale: the 1,000-resample bootstrap CI vs one ``roc_auc_score`` call on 2M test leads (issue 17).

Goal: ``benchmark.metrics.evaluate(y, scores, n_resamples=1000)`` (AUC, P@0.1 %,
P@1 %, R@5 %, each with its 95 % stratified-bootstrap CI) takes at most 100x one
``sklearn.metrics.roc_auc_score(y, scores)`` call on the same data, both timed in
this run (the AUC call is the median of ``--auc-repeats``). The data: ``--leads``
labels drawn at ``--pos-rate`` and continuous float64 scores with some signal
(so nearly every score is its own tie group, the worst case for tie handling).

Memory goal: peak RSS of the process at most 1,024 MB (``GOAL_RSS_MB``). At this size
``bootstrap`` resamples per bin (``BINNED_ABOVE``, recorded beside it): no
resamples x N matrix is drawn or cached (the per-lead cache took 8 GB at 2M).

    .venv/bin/python bench/metrics_scale.py [--leads 2000000] [--resamples 1000] [--profile-html out.html]

``--profile-html`` runs ``evaluate`` under pyinstrument and writes its report
(the timed figure then includes the profiler's small overhead).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import numpy as np
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(__file__))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from _record import record  # noqa: E402

from benchmark.metrics import BINNED_ABOVE, evaluate  # noqa: E402

GOAL_RATIO = 100
GOAL_RSS_MB = 1024


def data(leads: int, pos_rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = (rng.random(leads) < pos_rate).astype(np.int8)
    scores = 1.0 / (1.0 + np.exp(-(1.5 * y + rng.normal(size=leads))))
    return y, scores


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--leads", type=int, default=2_000_000)
    p.add_argument("--pos-rate", type=float, default=0.0145, help="share of positives (Table 1 world: 1.45 %%)")
    p.add_argument("--resamples", type=int, default=1000)
    p.add_argument("--auc-repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile-html", help="write a pyinstrument report of evaluate() here")
    p.add_argument("--no-record", action="store_true", help="print only (profiling runs)")
    a = p.parse_args(argv)
    y, scores = data(a.leads, a.pos_rate, a.seed)
    auc_times = []
    for _ in range(a.auc_repeats):
        t0 = time.perf_counter()
        auc = roc_auc_score(y, scores)
        auc_times.append(time.perf_counter() - t0)
    auc_s = statistics.median(auc_times)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    profiler = None
    if a.profile_html:
        from pyinstrument import Profiler
        profiler = Profiler()
        profiler.start()
    t0 = time.perf_counter()
    est = evaluate(y, scores, n_resamples=a.resamples)
    boot_s = time.perf_counter() - t0
    if profiler:
        profiler.stop()
        with open(a.profile_html, "w") as f:
            f.write(profiler.output_html())
        print(profiler.output_text(unicode=False, color=False, show_all=False))
    figures = {"leads": a.leads, "positives": int(y.sum()), "resamples": a.resamples,
               "roc_auc_s": round(auc_s, 4), "roc_auc_runs_s": [round(t, 4) for t in auc_times],
               "bootstrap_s": round(boot_s, 2), "ratio": round(boot_s / auc_s, 1),
               "auc": round(auc, 4), "auc_ci": [round(est["auc"].ci_low, 4), round(est["auc"].ci_high, 4)],
               "peak_rss_mb_before": round(rss_before),
               "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
               "binned_above": BINNED_ABOVE, "profiled": bool(profiler),
               "goals": {"ratio": GOAL_RATIO, "peak_rss_mb": GOAL_RSS_MB}}
    if a.no_record:
        print(figures)
        return figures
    return record("metrics", figures)


if __name__ == "__main__":
    main()

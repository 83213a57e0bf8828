"""Seconds per 1,000 texts of each line-encoding h_text provider, on the same leads, in one run.

The quick profile's +h_text rows spent most of its busy time in MiniLM; ``model2vec``
(static vectors distilled once from that MiniLM) replaces six transformer layers
per token by a table lookup. Both encode the *same* leads' texts here, the way
the provider does in a run (each distinct line once, a lead = the mean of its
lines; ``feature_store.text_encoders``), with the same torch thread count,
alternating providers and keeping the median of ``--repeats``, since other
processes share the CPU. Loading a model is timed apart (once per run in the
benchmark); the one-time distillation is timed only with ``--distill`` (it then
rebuilds into a temporary cache: minutes of CPU). Whether the cheaper vectors
still help the CTR models is not a speed question: the +h_text gains of Table 1
(6 CTR models, 3 seeds) answer it. ``--gains DIR,DIR`` records them instead, read
from each results folder's ``table1.csv`` (``leadrank tables --out DIR`` writes
it), the first folder being the reference whose gain CIs the others must stay in.

    .venv/bin/python bench/h_text_providers.py [--profile quick] [--dataset benchmark] [--leads 1000]
                                               [--providers minilm,model2vec] [--repeats 3] [--threads 1]
                                               [--distill] [--set KEY=VALUE ...]
    .venv/bin/python bench/h_text_providers.py --gains results,/tmp/model2vec-results
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

import leadrank_api as api
from benchmark import registry
from benchmark.profile import load_profile
from benchmark.results import all_runs
from benchmark.runner import load_splits
from feature_store.embeddings import get_provider
from feature_store.text_encoders import LineEncoder, distilled_dir, lead_texts, mean_of_lines, minilm_dir, split_lines

sys.path.insert(0, os.path.dirname(__file__))
from _record import record  # noqa: E402

BASELINE = "minilm"


def timed(fn, *args):
    t0 = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - t0


def gains(folders: list[Path]) -> None:
    """Each folder's +h_text gains (Table 1) and its provider; whether each stays in the first folder's CI."""
    by_folder = {}
    for folder in folders:
        frame = pd.read_csv(folder / "table1.csv").set_index("method")
        rows = frame[frame["embedding"] == "+h_text"]
        provider = {rec.info.get("h_text_provider", "?").split(" ")[0] for rec in all_runs(folder)
                    if rec.method in rows.index}
        by_folder[str(folder)] = {"provider": ",".join(sorted(provider)), "gains": {
            m: [round(r.gain, 4), round(r.gain_ci_low, 4), round(r.gain_ci_high, 4)] for m, r in rows.iterrows()}}
    reference = by_folder[str(folders[0])]["gains"]
    for folder, got in by_folder.items():
        got["within_reference_ci"] = {m: bool(reference[m][1] <= g[0] <= reference[m][2])
                                      for m, g in got["gains"].items() if m in reference}
        print(f"{got['provider']:10s} ({folder}): " + ", ".join(
            f"{m.split('+')[0]} {g[0]:+.4f} [{g[1]:+.4f}, {g[2]:+.4f}]" for m, g in got["gains"].items())
            + f"; all within the reference's CIs: {all(got['within_reference_ci'].values())}")
    record("h_text_providers", {"measure": "gains", "table": "table1", "reference": str(folders[0]),
                                "by_folder": by_folder})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="benchmark", help="a dataset name of the profile")
    p.add_argument("--leads", type=int, default=1000, help="the first N train leads (by time) are embedded")
    p.add_argument("--providers", default="minilm,model2vec", help=f"line encoders; ratios are to {BASELINE}")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the quick runner gives a job one)")
    p.add_argument("--distill", action="store_true", help="also time model2vec's distillation, from scratch")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="profile override, e.g. data_dir=/tmp/data (a world and distillation already built there)")
    p.add_argument("--gains", metavar="DIR,DIR", help="record the +h_text gains of these results folders instead")
    a = p.parse_args(argv)
    if a.gains:
        return gains([Path(f) for f in a.gains.split(",")])
    registry.load_all()  # a plugin's line encoder can be timed too
    profile = load_profile(a.profile, a.set)
    entry = next(d for d in profile.datasets if d.name == a.dataset)
    _, splits = load_splits(entry, profile)
    texts = lead_texts(splits.train)[:a.leads]
    docs = [split_lines(t) for t in texts]
    names = a.providers.split(",")
    providers: dict[str, LineEncoder] = {}
    for name in names:
        provider = get_provider(name)(profile.config)
        if not isinstance(provider, LineEncoder):
            raise SystemExit(f"provider '{name}' does not encode lines; this bench compares line encoders")
        provider.progress, provider.cache_dir = False, profile.cache_dir
        providers[name] = provider
    figures: dict = {"measure": "speed", "profile": a.profile, "dataset": entry.name, "leads": len(docs),
                     "lines": sum(map(len, docs)), "distinct_lines": len({s for d in docs for s in d}),
                     "torch_threads": a.threads, "repeats": a.repeats}
    with api.torch_threads(a.threads):
        if a.distill and "model2vec" in providers:
            with tempfile.TemporaryDirectory() as tmp:
                _, figures["model2vec_distill_s"] = timed(distilled_dir, minilm_dir(),
                                                          providers["model2vec"].options, Path(tmp))
        encoders = {}
        load_s = {}
        for name, provider in providers.items():  # model2vec's first use distils into the profile's cache
            encoders[name], load_s[name] = timed(provider.encoder)
        runs: dict[str, list[float]] = {name: [] for name in names}
        vectors = {}
        for _ in range(a.repeats):
            for name in names:
                vectors[name], seconds = timed(mean_of_lines, docs, *encoders[name])
                runs[name].append(seconds)
    per_1k = {name: statistics.median(r) / len(docs) * 1000 for name, r in runs.items()}
    print(f"{len(docs):,} leads of '{entry.name}' ({a.profile}): {figures['lines']:,} lines, "
          f"{figures['distinct_lines']:,} distinct; {a.threads} torch thread(s), median of {a.repeats}")
    for name in names:
        ratio = per_1k[BASELINE] / per_1k[name] if BASELINE in per_1k else float("nan")
        print(f"  {name:10s} {per_1k[name]:9.3f} s per 1k texts   load {load_s[name]:6.1f} s   "
              f"{BASELINE}/{name}: {ratio:,.1f}x   runs: " + ", ".join(f"{t:.2f}" for t in runs[name]))
    record("h_text_providers", {
        **figures, "providers": names, "s_per_1k_texts": {k: round(v, 4) for k, v in per_1k.items()},
        "runs_s": {k: [round(t, 3) for t in v] for k, v in runs.items()},
        "load_s": {k: round(v, 2) for k, v in load_s.items()},
        "dims": {k: int(v.shape[1]) for k, v in vectors.items()},
        "speedup_vs_minilm": {k: round(per_1k[BASELINE] / v, 1) for k, v in per_1k.items()}
        if BASELINE in per_1k else {}})


if __name__ == "__main__":
    main()

"""Speed-up of the frozen-prefix cache (``llm.prefix_cache``) on the standard profile's LLM rows.

Measures, in one process, on real prompts of the small synthetic worlds and the
standard profile's settings (SmolLM2-135M, LoRA in the top ``llm.lora_layers``
blocks), every run with and without the cache in alternation:

* **five rows**: the standard profile's LLM rows — asllr_base, asllr_ce and
  asllr_hpro on a Table 1 world, asllr_ce and asllr_hpro on a Table 2 world —
  each trained on the same ``--train-leads`` and scoring the same
  ``--test-leads`` of its world (as in a run, where the rows of a table share
  its subsample and test sample; the leads scored here come from the
  validation split, whose labels a bench may read); the cache starts empty,
  so the first row of each table fills it;
* **one row, several epochs**: asllr_ce for ``--epochs`` epochs, the cache
  empty at the start (epoch 1 fills it), in fp16 and in fp32;
* the score difference, cache vs none, per row: the largest |Δ score| and |Δ AUC|.

The speed-up is the ratio of the seconds spent training and scoring
(``train_s`` + scoring); the wall time of whole rows (backbone loading, prompt
building and the cache's key included) and process CPU seconds are recorded
beside it, since the box may be shared. The line is appended to
``results/bench/llm_cache.jsonl`` (``bench/_record.py``) unless ``--no-record``.

Usage::

    nice .venv/bin/python bench/llm_cache.py  # 4 train, 8 scored leads per row, 2 epochs: ~50 min on a busy 2-core box
    .venv/bin/python bench/llm_cache.py --profile quick --set llm.lora_layers=1 --no-record
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import record  # noqa: E402

from benchmark.contract import contract_profile, tiny_entry  # noqa: E402
from benchmark.profile import load_profile  # noqa: E402
from benchmark.registry import get  # noqa: E402
from benchmark.runner import load_splits  # noqa: E402
from feature_store.typed import parse  # noqa: E402
from llm_ranker.backbones import backbone_dir  # noqa: E402
from llm_ranker.config import LLMParams  # noqa: E402
from llm_ranker.ranker import subsample  # noqa: E402

ROWS = (("table1", "asllr_base"), ("table1", "asllr_ce"), ("table1", "asllr_hpro"),
        ("table2", "asllr_ce"), ("table2", "asllr_hpro"))
AUC_GOAL = 1e-3


def run_row(method: str, config: dict, cache: Path, train, test) -> dict:
    """Fit and score one row; its scores, timings and the cache's figures."""
    from sklearn.metrics import roc_auc_score

    wall, cpu = time.perf_counter(), time.process_time()
    m = get(method).from_config(config, seed=0, cache_dir=str(cache))
    m.fit(train, train.take(np.arange(0)))
    t0 = time.perf_counter()
    scores = m.score(test)
    score_s = time.perf_counter() - t0
    info = m.run_info()
    m.close()
    return {"scores": scores, "auc": float(roc_auc_score(test.y, scores)), "train_s": info["train_s"],
            "score_s": score_s, "compute_s": info["train_s"] + score_s, "wall_s": time.perf_counter() - wall,
            "cpu_s": time.process_time() - cpu, "cache": info.get("prefix_cache_scored"),
            "prompt_tokens_mean": info["prompt_tokens_mean"]}


def fresh_cache(root: Path, backbones: Path) -> Path:
    """An empty method cache that shares the converted backbones (the prefix folder starts empty)."""
    path = Path(tempfile.mkdtemp(dir=root, prefix="bench-llm-cache-"))
    (path / "backbones").symlink_to(backbones.resolve(), target_is_directory=True)
    return path


def totals(runs: list[dict]) -> dict:
    return {k: round(sum(r[k] for r in runs), 1) for k in ("compute_s", "train_s", "score_s", "wall_s", "cpu_s")}


def ratios(off: dict, on: dict) -> dict:
    return {"speedup": round(off["compute_s"] / on["compute_s"], 3),
            "wall_speedup": round(off["wall_s"] / on["wall_s"], 3), "cpu_speedup": round(off["cpu_s"] / on["cpu_s"], 3)}


def difference(off: list[dict], on: list[dict]) -> dict:
    return {"max_abs_score": float(f"{max(np.abs(a['scores'] - b['scores']).max() for a, b in zip(off, on)):.3g}"),
            "max_abs_auc": float(f"{max(abs(a['auc'] - b['auc']) for a, b in zip(off, on)):.3g}")}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--train-leads", type=int, default=4)
    ap.add_argument("--test-leads", type=int, default=8, help="half of them positives, where the world has them")
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the several-epochs row")
    ap.add_argument("--no-record", action="store_true", help="print only; append nothing to results/bench/")
    a = ap.parse_args(argv)
    if min(a.train_leads, a.test_leads, a.epochs) < 1:
        ap.error("--train-leads, --test-leads and --epochs must be at least 1")

    profile = load_profile(a.profile, [*a.overrides, f"llm.train_max_leads={a.train_leads}", "llm.valid_max_leads=0",
                                       "llm.checkpoint_every=0"])
    llm = profile.config["llm"]
    if not llm.get("lora_layers"):
        ap.error("the cache serves top-k LoRA only: this profile has llm.lora_layers null (--set llm.lora_layers=K)")
    data = {t: load_splits(tiny_entry(t), contract_profile(profile.data_dir))[1] for t in ("table1", "table2")}
    parts = {t: (subsample(s.train, a.train_leads, 0), subsample(s.valid, a.test_leads, 0)) for t, s in data.items()}
    backbones = profile.cache_dir / "backbones"
    backbones.mkdir(parents=True, exist_ok=True)
    if llm["backbone"] != "tiny":  # converted before any timing (a tiny backbone is built from each row's prompts)
        backbone_dir(parse(LLMParams, llm, section="llm"), profile.cache_dir)
    load_before = os.getloadavg()

    def config(cache: str, **llm_set) -> dict:
        return {**profile.config, "llm": {**llm, "prefix_cache": cache, **llm_set}}

    rows_cache = fresh_cache(profile.cache_dir, backbones)
    epochs_cache = fresh_cache(profile.cache_dir, backbones)
    try:
        rows = {"off": [], "fp16": []}
        for table, method in ROWS:  # alternating, so a busier minute costs both arms alike
            for arm in rows:
                rows[arm].append(run_row(method, config(arm), rows_cache, *parts[table]))
                print(f"{table} {method} {arm}: {rows[arm][-1]['compute_s']:.1f} s", flush=True)
        size_mb = rows["fp16"][-1]["cache"]["size_mb"]
        several = {arm: run_row("asllr_ce", config(arm, epochs=a.epochs), epochs_cache, *parts["table1"])
                   for arm in ("off", "fp16", "fp32")}
    finally:
        shutil.rmtree(rows_cache, ignore_errors=True)
        shutil.rmtree(epochs_cache, ignore_errors=True)
    row_totals = {arm: totals(r) for arm, r in rows.items()}
    report = {
        "profile": profile.name, "backbone": llm["backbone"], "lora_layers": llm["lora_layers"],
        "threads": llm.get("threads"), "train_leads": a.train_leads, "test_leads": a.test_leads,
        "prompt_tokens_mean": rows["off"][0]["prompt_tokens_mean"],
        "rows": {"names": [f"{t}:{m}" for t, m in ROWS], **row_totals, **ratios(row_totals["off"], row_totals["fp16"]),
                 "cache_hits": sum(r["cache"]["hits"] for r in rows["fp16"]),
                 "cache_misses": sum(r["cache"]["misses"] for r in rows["fp16"]), "cache_size_mb": size_mb},
        "epochs": {"epochs": a.epochs, "off": totals([several["off"]]),
                   **{arm: {**totals([several[arm]]), **ratios(totals([several["off"]]), totals([several[arm]]))}
                      for arm in ("fp16", "fp32")},
                   "cache_hits_fp16": several["fp16"]["cache"]["hits"]},
        "score_difference": {"fp16": difference(rows["off"] + [several["off"]], rows["fp16"] + [several["fp16"]]),
                             "fp32": difference([several["off"]], [several["fp32"]])},
        "load_avg_1min": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "overrides": a.overrides, "goals": {"max_abs_auc": AUC_GOAL}}
    print(report)
    if not a.no_record:
        record("llm_cache", report)
    return report


if __name__ == "__main__":
    main()

"""Overhead of the suite's CTR adapter over a bare deepctr-torch ``fit`` (goal: ratio <= 1.10).

For each of ``--models`` (DeepFM and xDeepFM by default), both train the same
model (same feature columns, seed, batch size, epochs,
validation data and torch threads) on the train split of a profile's dataset;
the suite's fit runs through ``baselines.ctr`` (input conversion, early-stopping
callback with best-weight restore, stdout capture, progress hook), the bare one
calls ``model.fit`` the way deepctr-torch's README does. Patience is set to the
number of epochs so both run every epoch. Runs alternate and the median of
``--repeats`` is reported, since other processes share the CPU. The bare fit
reads the same categorical inputs as the suite (``Split.codes()``: the codes and,
where the data has one, the current stage as one more categorical). One JSON line
per model is printed and appended to ``results/bench/ctr_overhead.jsonl``.

    .venv/bin/python bench/ctr_overhead.py [--profile quick] [--dataset benchmark] [--models deepfm,xdeepfm]
                                           [--epochs 2] [--repeats 3]

``--big-epoch SPEC`` instead times one epoch of the suite's DeepFM on the dataset of that spec
(the 6.14M industrial world: ``leadrank generate``, then its ``spec.yaml``): load + split, the
fit (one epoch and its validation AUC), and the process's peak RSS — context, no goal.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import resource
import statistics
import sys
import time

import numpy as np

import leadrank_api as api
from baselines import deepctr_compat as dc
from benchmark import registry
from benchmark.profile import load_profile
from benchmark.runner import load_splits
from feature_store.split import Split

sys.path.insert(0, os.path.dirname(__file__))
from _record import record  # noqa: E402

GOAL_RATIO = 1.10
WARM_UP_LEADS = 20_000  # >= the quick world's train split: there the warm-up fits all of it


def suite_fit(name: str, train: Split, valid: Split, config: dict, seed: int) -> float:
    method = registry.get(name).from_config(config, seed=seed)
    t0 = time.perf_counter()
    method.fit(train, valid)
    wall = time.perf_counter() - t0
    assert method.log.epochs_run == config["ctr"]["epochs"], "early stopping cut the suite's fit short"
    return wall


def bare_fit(name: str, train: Split, valid: Split, config: dict, seed: int) -> float:
    """deepctr-torch as its README uses it: one SparseFeat/DenseFeat per column, a dict of arrays."""
    s, c = train.schema, config["ctr"]
    columns = ([dc.SparseFeat(f"c{j}", size, embedding_dim=c["embedding_dim"])
                for j, (_, size) in enumerate(s.table_categorical)]
               + [dc.DenseFeat(f"n{j}", 1) for j in range(len(s.numeric))])

    def inputs(split: Split) -> dict[str, np.ndarray]:
        codes = split.codes()
        return {**{f"c{j}": codes[:, j] for j in range(codes.shape[1])},
                **{f"n{j}": split.num[:, j] for j in range(split.num.shape[1])}}

    x, xv, y, yv = inputs(train), inputs(valid), train.y, valid.y  # built before the clock, like the suite's split
    t0 = time.perf_counter()
    with api.torch_threads(c["threads"]):
        model = dc.model_class(registry.get(name).options.model)(columns, columns, seed=seed, device="cpu")
        model.compile("adam", "binary_crossentropy", metrics=["auc"])
        with contextlib.redirect_stdout(io.StringIO()):  # its epoch lines would flood the report
            model.fit(x, y, batch_size=c["batch_size"], epochs=c["epochs"], verbose=0, validation_data=(xv, yv))
    return time.perf_counter() - t0


def big_epoch(spec_path: str, seed: int) -> None:
    """One epoch of the suite's DeepFM on a big dataset, with the quick profile's CTR settings."""
    from feature_store.spec import load_spec
    from feature_store.store import Dataset

    t0 = time.perf_counter()
    ds = Dataset.load(load_spec(spec_path))
    splits = ds.splits()
    t1 = time.perf_counter()
    profile = load_profile("quick", ["ctr.epochs=1", "ctr.patience=1"])
    config = {"ctr": api.method_settings(registry.get("deepfm"), profile.config)["ctr"].to_dict()}
    fit_s = suite_fit("deepfm", splits.train, splits.valid, config, seed)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    print(f"DeepFM, one epoch on {len(ds.frame):,} leads ({len(splits.train):,} train, {len(splits.valid):,} valid): "
          f"load + split {t1 - t0:.0f} s, fit {fit_s:.0f} s, peak RSS {peak:,} MB")
    record("ctr_overhead", {
        "model": "DeepFM", "method": "deepfm", "measure": "big_epoch", "leads": len(ds.frame),
        "train_leads": len(splits.train), "valid_leads": len(splits.valid), "epochs": 1,
        "batch_size": config["ctr"]["batch_size"], "torch_threads": config["ctr"]["threads"],
        "load_split_s": round(t1 - t0, 1), "fit_s": round(fit_s, 1), "peak_rss_mb": peak,
        "train_leads_per_s": round(len(splits.train) / fit_s)})


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="benchmark", help="a dataset name of the profile")
    p.add_argument("--models", default="deepfm,xdeepfm", help="registered deepctr rows, comma-separated")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--big-epoch", metavar="SPEC", help="time one DeepFM epoch on this dataset spec instead")
    a = p.parse_args(argv)
    if a.big_epoch:
        return big_epoch(a.big_epoch, a.seed)
    profile = load_profile(a.profile, [f"ctr.epochs={a.epochs}", f"ctr.patience={a.epochs}"])
    entry = next(d for d in profile.datasets if d.name == a.dataset)
    _, splits = load_splits(entry, profile)
    train, valid = splits.train, splits.valid
    for name in a.models.split(","):
        config = {"ctr": api.method_settings(registry.get(name), profile.config)["ctr"].to_dict()}
        label = registry.get(name).options.model
        times: dict[str, list[float]] = {"suite": [], "bare": []}
        # first-call costs (lazy imports, allocator) hit neither side; they do not grow with the data,
        # so on a big world the warm-up fits a slice
        head = train.take(np.arange(min(len(train), WARM_UP_LEADS)))
        for warm_up in (bare_fit, suite_fit):
            warm_up(name, head, valid, config, a.seed)
        for _ in range(a.repeats):
            times["bare"].append(bare_fit(name, train, valid, config, a.seed))
            times["suite"].append(suite_fit(name, train, valid, config, a.seed))
        samples = len(train) * a.epochs
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{label} on '{entry.name}' ({a.profile}): {len(train):,} train leads, {len(valid):,} valid, "
              f"{a.epochs} epochs, batch {config['ctr']['batch_size']}, {config['ctr']['threads']} torch thread(s), "
              f"median of {a.repeats}")
        for k, text in (("suite", f"suite {label} fit"), ("bare", "bare deepctr-torch fit")):
            print(f"  {text:24s} {med[k]:7.2f} s  {samples / med[k]:9,.0f} samples/s   runs: "
                  + ", ".join(f"{t:.2f}" for t in times[k]))
        ratio = med["suite"] / med["bare"]
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(f"  overhead ratio suite/bare: {ratio:.3f} (goal <= {GOAL_RATIO}: {verdict})")
        record("ctr_overhead", {
            "model": label, "method": name, "profile": a.profile, "dataset": entry.name,
            "train_leads": len(train), "valid_leads": len(valid), "epochs": a.epochs,
            "batch_size": config["ctr"]["batch_size"], "torch_threads": config["ctr"]["threads"],
            "repeats": a.repeats, "suite_s": round(med["suite"], 3), "bare_s": round(med["bare"], 3),
            "suite_runs_s": [round(t, 3) for t in times["suite"]], "bare_runs_s": [round(t, 3) for t in times["bare"]],
            "samples_per_s_suite": round(samples / med["suite"]), "ratio": round(ratio, 3),
            "goals": {"ratio": GOAL_RATIO}})


if __name__ == "__main__":
    main()

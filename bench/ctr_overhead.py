"""Overhead of the suite's DeepFM adapter over a bare deepctr-torch ``fit`` (goal: ratio <= 1.10).

Both train the same DeepFM (same feature columns, seed, batch size, epochs,
validation data and torch threads) on the train split of a profile's dataset;
the suite's fit runs through ``baselines.ctr`` (input conversion, early-stopping
callback with best-weight restore, stdout capture, progress hook), the bare one
calls ``model.fit`` the way deepctr-torch's README does. Patience is set to the
number of epochs so both run every epoch. Runs alternate and the median of
``--repeats`` is reported, since other processes share the CPU.

    .venv/bin/python bench/ctr_overhead.py [--profile quick] [--dataset benchmark] [--epochs 2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import time
from dataclasses import asdict

import numpy as np

from baselines import ctr
from baselines import deepctr_compat as dc
from benchmark.profile import load_profile
from benchmark import registry
from benchmark.registry import MethodContext
from benchmark.runner import load_splits
from feature_store.store import Split


def suite_fit(train: Split, valid: Split, config: dict, seed: int) -> float:
    method = registry.get("deepfm")(MethodContext(seed=seed, config=config))
    t0 = time.perf_counter()
    method.fit(train, valid)
    wall = time.perf_counter() - t0
    assert method.log.epochs_run == config["ctr"]["epochs"], "early stopping cut the suite's fit short"
    return wall


def bare_fit(train: Split, valid: Split, config: dict, seed: int) -> float:
    """deepctr-torch as its README uses it: one SparseFeat/DenseFeat per column, a dict of arrays."""
    s, c = train.schema, config["ctr"]
    columns = ([dc.SparseFeat(f"c{j}", s.cardinalities[n], embedding_dim=c["embedding_dim"])
                for j, n in enumerate(s.categorical)] + [dc.DenseFeat(f"n{j}", 1) for j in range(len(s.numeric))])

    def inputs(split: Split) -> dict[str, np.ndarray]:
        return {**{f"c{j}": split.cat[:, j] for j in range(split.cat.shape[1])},
                **{f"n{j}": split.num[:, j] for j in range(split.num.shape[1])}}

    x, xv, y, yv = inputs(train), inputs(valid), train.y, valid.y  # built before the clock, like the suite's split
    t0 = time.perf_counter()
    with ctr.torch_threads(c["threads"]):
        model = dc.model_class("DeepFM")(columns, columns, seed=seed, device="cpu")
        model.compile("adam", "binary_crossentropy", metrics=["auc"])
        with contextlib.redirect_stdout(io.StringIO()):  # its epoch lines would flood the report
            model.fit(x, y, batch_size=c["batch_size"], epochs=c["epochs"], verbose=0, validation_data=(xv, yv))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="quick")
    p.add_argument("--dataset", default="benchmark", help="a dataset name of the profile")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    profile = load_profile(a.profile, [f"ctr.epochs={a.epochs}", f"ctr.patience={a.epochs}"])
    entry = next(d for d in profile.datasets if d.name == a.dataset)
    _, splits = load_splits(entry, profile)
    config = {"ctr": asdict(ctr.CTRConfig.from_context(MethodContext(config=profile.config)))}
    train, valid = splits.train, splits.valid
    times: dict[str, list[float]] = {"suite": [], "bare": []}
    for warm_up in (bare_fit, suite_fit):  # first-call costs (lazy imports, allocator) hit neither side
        warm_up(train, valid, config, a.seed)
    for _ in range(a.repeats):
        times["bare"].append(bare_fit(train, valid, config, a.seed))
        times["suite"].append(suite_fit(train, valid, config, a.seed))
    samples = len(train) * a.epochs
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"DeepFM on '{entry.name}' ({a.profile}): {len(train):,} train leads, {len(valid):,} valid, "
          f"{a.epochs} epochs, batch {config['ctr']['batch_size']}, {config['ctr']['threads']} torch thread(s), "
          f"median of {a.repeats}")
    for k, label in (("suite", "suite DeepFM fit"), ("bare", "bare deepctr-torch fit")):
        print(f"  {label:24s} {med[k]:7.2f} s  {samples / med[k]:9,.0f} samples/s   runs: "
              + ", ".join(f"{t:.2f}" for t in times[k]))
    ratio = med["suite"] / med["bare"]
    print(f"  overhead ratio suite/bare: {ratio:.3f} (goal <= 1.10: {'met' if ratio <= 1.10 else 'NOT met'})")


if __name__ == "__main__":
    main()

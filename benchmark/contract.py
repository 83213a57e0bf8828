"""``check_method``: the contract every registered method must pass (like scikit-learn's
``check_estimator``).

On a tiny synthetic world it fits the method, scores every test lead and checks
that the scores are finite and of the right shape, that the method never read
test labels or outcomes (nor ``p_true``, unless it is the oracle), that it read
nothing outside the dataset's input view and exactly the inputs it declares
(``Method.inputs``, what its results record: the splits it gets are
``WatchedSplit`` s that log every read), that it made no network call, and that
the same seed gives the same scores (within the method's ``determinism_tol``: 0
for exact methods, a stated tolerance for LLMs).
"""

from __future__ import annotations

import socket
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

import leadrank_api as api
from benchmark.profile import DatasetEntry, Profile, load_profile
from benchmark.runner import load_splits, missing_requirement, prepare_inputs
from feature_store.errors import OutcomeAccessError
from feature_store.store import Inputs, ReadLog, Schema, WatchedSplit


class ContractError(AssertionError):
    pass


@contextmanager
def no_network() -> Iterator[None]:
    """Any attempt to open a network connection raises (loopback/UNIX sockets included)."""
    original = socket.socket.connect, socket.socket.connect_ex, socket.create_connection

    def refuse(*args: Any, **kwargs: Any):
        raise ContractError(f"network access attempted: {args[1:] if len(args) > 1 else args}")

    socket.socket.connect = refuse  # type: ignore[method-assign]
    socket.socket.connect_ex = refuse  # type: ignore[method-assign]
    socket.create_connection = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        socket.socket.connect, socket.socket.connect_ex, socket.create_connection = original


def contract_profile(data_dir: Path, overrides: list[str] | tuple[str, ...] = ()) -> Profile:
    """The quick profile shrunk for the contract: tiny worlds, few resamples, one epoch."""
    base = [f"data_dir={data_dir}", "eval.bootstrap=50", "ctr.epochs=1", "llm.train_max_leads=256",
            "llm.max_length=256", "eval.test_negatives=500",
            "h_text.provider=tfidf"]  # the +h_text rows' contract is about the method; minilm is tested on its own
    return load_profile("quick", [*base, *overrides])


def tiny_entry(table: str, leads: int = 3000) -> DatasetEntry:
    world = {"table1": "benchmark", "table2": "industrial", "table3": "textual"}[table]
    return DatasetEntry(name=f"tiny-{world}", table=table, world=world, leads=leads, seed=0)


def _fit_score(cls: type[api.Method], entry: DatasetEntry, profile: Profile,
               seed: int) -> tuple[np.ndarray, dict, Inputs, ReadLog]:
    """Scores, the test split's guarded reads, the inputs the method declares and those it read."""
    ds, splits = load_splits(entry, profile)
    why = missing_requirement(cls, splits)
    if why:
        raise ContractError(f"tiny world cannot serve '{cls.name}': {why}")
    (train, valid, test), _ = prepare_inputs(cls, ds, splits, profile)
    test.reads.clear()
    log = ReadLog()
    train, valid, test = (WatchedSplit.of(s, log) for s in (train, valid, test))
    method = cls(api.MethodContext(seed=seed, settings=api.method_settings(cls, profile.config),
                                   cache_dir=str(profile.cache_dir)))
    with no_network():
        try:
            method.fit(train, valid)
            scores = np.asarray(method.score(test), dtype=np.float64)
            method.close()  # or the determinism check's second fit would load the first one's weights
        except OutcomeAccessError as e:
            raise ContractError(f"'{cls.name}' read hidden test data: {e}") from None
    return scores, dict(test.reads), method.inputs(test.schema), log


def check_inputs(name: str, declared: Inputs, log: ReadLog, schema: Schema) -> None:
    """Raise unless the method read and declares only the dataset's input view, and reads what it declares."""
    outside = sorted((log.columns | set(declared.columns)) - set(schema.observable))
    if outside:
        raise ContractError(f"'{name}' reads or declares columns outside the input view of "
                            f"'{schema.dataset}': {outside}")
    read = {"columns": sorted(log.columns), "stage": log.stage, "text": sorted(log.text) or ["none"]}
    said = {"columns": list(declared.columns), "stage": declared.stage, "text": [declared.text]}
    diff = [f"{k}: reads {read[k]}, declares {said[k]}" for k in read if read[k] != said[k]]
    if diff:
        raise ContractError(f"'{name}' reads other inputs than its inputs() declares (the record would "
                            f"misstate them): " + "; ".join(diff))


def check_method(cls: type[api.Method], data_dir: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> np.ndarray:
    """Raise ContractError unless ``cls`` honours the method contract; returns its scores."""
    profile = contract_profile(Path(data_dir), overrides)
    table = cls.tables[0] if cls.tables else "table1"
    entry = tiny_entry(table)
    n_test = len(load_splits(entry, profile)[1].test)
    scores, reads, declared, log = _fit_score(cls, entry, profile, seed=0)
    if scores.shape != (n_test,):
        raise ContractError(f"'{cls.name}' returned scores of shape {scores.shape}, expected ({n_test},)")
    if not np.all(np.isfinite(scores)):
        raise ContractError(f"'{cls.name}' returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    if reads.get("labels") or reads.get("outcomes"):
        raise ContractError(f"'{cls.name}' tried to read test labels/outcomes: {reads}")
    if reads.get("p_true") and cls.family != "oracle":
        raise ContractError(f"'{cls.name}' read p_true, which only the oracle may use")
    again = _fit_score(cls, entry, profile, seed=0)[0]
    tol = float(getattr(cls, "determinism_tol", 0.0))
    if not np.allclose(scores, again, rtol=0, atol=tol):
        raise ContractError(f"'{cls.name}' is not deterministic for a fixed seed: max |diff| = "
                            f"{np.max(np.abs(scores - again)):.3g} > tolerance {tol}")
    check_inputs(cls.name, declared, log, load_splits(entry, profile)[1].test.schema)
    return scores

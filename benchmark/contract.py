"""``check_method``: the contract every registered method must pass (like scikit-learn's
``check_estimator``; ``leadrank check NAME`` runs it from the command line).

On a tiny synthetic world of every table the method declares it fits the method, scores every test lead and checks
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
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

import leadrank_api as api
from benchmark.profile import DatasetEntry, Profile, load_profile
from benchmark.runner import load_splits, missing_requirement, one_line, prepare_inputs
from feature_store.errors import OutcomeAccessError
from feature_store.schema import Inputs, Schema
from feature_store.split import Split


class ContractError(AssertionError):
    pass


# What a method that passes has shown, in the order checked (``leadrank check`` prints it).
CHECKS = ("fits and scores without raising", "one finite score per test lead",
          "no read of test labels or outcomes (nor p_true, unless an oracle)", "the same scores for the same seed",
          "reads exactly the inputs it declares", "no network call")


@dataclass
class ReadLog:
    """What a method read from :class:`WatchedSplit` s, as :class:`Inputs` has it (``text``: the
    set of ways the text was read)."""

    columns: set[str] = field(default_factory=set)
    stage: bool = False
    text: set[str] = field(default_factory=set)
    paused: bool = False

    def note(self, schema: Schema, columns: list[str] | tuple[str, ...]) -> None:
        """Columns read; a text column read from ``raw`` is the raw text, as in a prompt."""
        for c in columns:
            if c in schema.text:
                self.text.add("prompt")
            else:
                self.columns.add(c)

    def read(self, name: str, value: Any, schema: Schema) -> Any:
        """Log the read of the split field ``name``; return what the method gets."""
        if name == "cat":
            self.note(schema, schema.categorical)
        elif name == "num":
            self.note(schema, schema.numeric_columns)
        elif name == "time" and schema.time_column:
            self.note(schema, [schema.time_column])
        elif name == "stage":
            self.stage = True
        elif name == "texts":
            self.text.add("prompt")
        elif name == "h_text":
            self.text.add("h_text")
        elif name == "raw":
            value = _WatchedFrame(value)
            object.__setattr__(value, "_note", lambda cols: self.note(schema, cols))
        return value

    @contextmanager
    def pause(self) -> Iterator[None]:
        """Copying a split (``take``) is not reading it."""
        was, self.paused = self.paused, True
        try:
            yield
        finally:
            self.paused = was


_WATCHED = frozenset({"cat", "num", "raw", "texts", "stage", "time", "h_text"})


@dataclass(frozen=True, eq=False)
class WatchedSplit(Split):
    """A split that logs which observable inputs a method reads (the method contract's input check).

    ``cat`` reads every categorical column, ``num`` every numeric one, ``raw[c]`` (so also
    ``numeric(c)``) the column ``c`` and a whole-frame read of ``raw`` every column, ``time``
    the time column, ``stage`` the current stage, ``texts`` the raw text and ``h_text`` its
    embedding. Copies (``take``, ``with_h_text``) log into the same :class:`ReadLog`."""

    log: ReadLog = field(default_factory=ReadLog, repr=False, compare=False)

    @classmethod
    def of(cls, split: Split, log: ReadLog) -> "WatchedSplit":
        return cls(**{f.name: getattr(split, f.name) for f in fields(Split)}, log=log)

    def __getattribute__(self, name: str) -> Any:
        value = object.__getattribute__(self, name)
        if name in _WATCHED and value is not None:
            log = object.__getattribute__(self, "log")
            if not log.paused:
                value = log.read(name, value, object.__getattribute__(self, "schema"))
        return value

    def take(self, idx: np.ndarray) -> "Split":
        with self.log.pause():
            return super().take(idx)

    def with_h_text(self, h_text: np.ndarray) -> "Split":
        with self.log.pause():
            return super().with_h_text(h_text)


class _WatchedFrame(pd.DataFrame):
    """``raw`` of a watched split: ``raw[c]`` notes ``c``; the whole-frame reads ``iloc``, ``loc``,
    ``values``, ``to_numpy`` note every column; names (``columns``, ``c in raw``) are free."""

    _metadata = ["_note"]

    def __getitem__(self, key: Any) -> Any:
        self._note([key] if isinstance(key, str) else list(key) if isinstance(key, (list, pd.Index))
                   else list(self.columns))
        return super().__getitem__(key)

    def _whole(self) -> pd.DataFrame:
        self._note(list(self.columns))
        return pd.DataFrame(self)

    iloc = property(lambda self: self._whole().iloc)
    loc = property(lambda self: self._whole().loc)
    values = property(lambda self: self._whole().values)

    def to_numpy(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self._whole().to_numpy(*args, **kwargs)

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self._whole().__array__(*args, **kwargs)



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
        except ContractError:
            raise
        except Exception as e:  # noqa: BLE001  (any crash of the method is a failed contract, said in one line)
            raise ContractError(f"'{cls.name}' raised in fit or score: {one_line(e)}") from e
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


def check_method(cls: type[api.Method], data_dir: str | Path, overrides: list[str] | tuple[str, ...] = (),
                 tables: tuple[str, ...] | None = None) -> dict[str, np.ndarray]:
    """Raise ContractError unless ``cls`` honours the method contract on the tiny world of each of
    ``tables`` (default: every table it declares; a base method with none: Table 1's); returns its
    scores per table."""
    profile = contract_profile(Path(data_dir), overrides)
    return {table: _check_table(cls, profile, table) for table in tables or cls.tables or ("table1",)}


def _check_table(cls: type[api.Method], profile: Profile, table: str) -> np.ndarray:
    entry = tiny_entry(table)
    n_test = len(load_splits(entry, profile)[1].test)
    scores, reads, declared, log = _fit_score(cls, entry, profile, seed=0)
    if scores.shape != (n_test,):
        raise ContractError(f"'{cls.name}' returned scores of shape {scores.shape}, expected ({n_test},)")
    if not np.all(np.isfinite(scores)):
        raise ContractError(f"'{cls.name}' returned {int((~np.isfinite(scores)).sum())} non-finite scores")
    if reads.get("labels") or reads.get("outcomes"):
        raise ContractError(f"'{cls.name}' tried to read test labels/outcomes: {reads}")
    if reads.get("p_true") and cls.family != api.Family.ORACLE:
        raise ContractError(f"'{cls.name}' read p_true, which only the oracle may use")
    again = _fit_score(cls, entry, profile, seed=0)[0]
    tol = float(getattr(cls, "determinism_tol", 0.0))
    if not np.allclose(scores, again, rtol=0, atol=tol):
        raise ContractError(f"'{cls.name}' is not deterministic for a fixed seed: max |diff| = "
                            f"{np.max(np.abs(scores - again)):.3g} > tolerance {tol}")
    check_inputs(cls.name, declared, log, load_splits(entry, profile)[1].test.schema)
    return scores

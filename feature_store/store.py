"""The feature store: loads a dataset by its spec, splits it, encodes it, hands out splits.

Models never read files. They receive :class:`Split` objects holding encoded
arrays, raw feature values (for prompts), texts, the current stage and time.
Labels and outcomes are readable on train/valid only: on the test split they
raise :class:`OutcomeAccessError`, and every attempt is counted so the method
contract test can prove a method never looked.
What a method may read of the rest is the dataset's input view (:class:`Schema`).

Inside ``feature_store`` the data path runs one way, and so do the imports:
spec (:mod:`~feature_store.spec`) -> read (:mod:`~feature_store.ingest`) ->
check (:mod:`~feature_store.validate`) -> dataset (this module) -> splits,
whose indices come from :mod:`feature_store.splits`, the one place a split is
computed (validation checks the very same cut).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from feature_store.encoders import TableEncoder
from feature_store.errors import DataError, OutcomeAccessError
from feature_store.evaluation import Truth, case_control
from feature_store.schema import Schema
from feature_store.spec import DatasetSpec
from feature_store.splits import lead_ids, split_indices
from feature_store.validate import check


class TextColumn(Sequence):
    """One text column of a split: the leads' strings ('' where missing), read on demand from the
    dataset's column, of which it holds only the row numbers.

    A Python list of a 6M-lead transcript column takes about 5 GB, and every split would hold one.
    Values are fetched a block of leads at a time, chunk by chunk of the Arrow column: Arrow's
    ``take`` on a whole chunked column first joins every chunk into one copy."""

    BLOCK = 8192  # leads converted to Python strings at a time while iterating

    def __init__(self, chunks: pa.ChunkedArray, rows: np.ndarray):
        self._chunks, self.rows = chunks, rows
        self._starts = np.cumsum([0] + [len(c) for c in chunks.chunks])

    @staticmethod
    def arrow(column: pd.Series) -> pa.ChunkedArray:
        """A frame's text column as Arrow (an Arrow-backed column is not copied; another is converted)."""
        values = pa.array(column, from_pandas=True)
        return values if isinstance(values, pa.ChunkedArray) else pa.chunked_array([values])

    @classmethod
    def of(cls, column: pd.Series, rows: np.ndarray) -> "TextColumn":
        """The rows ``rows`` of a frame's text column."""
        return cls(cls.arrow(column), np.asarray(rows))

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            return TextColumn(self._chunks, self.rows[i])
        return self._values(self.rows[[i]])[0]

    def __iter__(self) -> Iterator[str]:
        for start in range(0, len(self.rows), self.BLOCK):
            yield from self._values(self.rows[start:start + self.BLOCK])

    def take(self, idx: np.ndarray) -> "TextColumn":
        return TextColumn(self._chunks, self.rows[idx])

    def _values(self, rows: np.ndarray) -> list[str]:
        chunk = np.searchsorted(self._starts, rows, side="right") - 1
        out = [""] * len(rows)
        for k in np.unique(chunk):
            at = np.flatnonzero(chunk == k)
            values = self._chunks.chunk(int(k)).take(pa.array(rows[at] - self._starts[k])).to_pylist()
            for i, v in zip(at.tolist(), values):
                out[i] = "" if v is None else str(v)
        return out


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset, as models see it.

    ``cat``: int codes (n, n_cat), 0 = unseen in train: int16, or int32 where a column has more than
    2**15 codes (``TableEncoder.code_dtype``). ``num``: float32 (n, n_num),
    scaled with train statistics. ``raw``: the untouched values of the tabular features
    (prompts and models with native categorical handling). ``texts``: the text columns, one
    string per lead ('' where missing; a :class:`TextColumn` for a loaded dataset). ``stage``:
    current-stage depth (0 = shallowest, -1 = unknown) or None. ``h_text``: text
    embeddings, attached by the runner for methods that ask for them.

    The texts are not in ``raw``: a split would otherwise hold its own copy of every transcript
    (at 6M leads, gigabytes per copy), while ``texts`` reads them from the dataset's one copy.
    ``_codes``: ``codes()`` where the store built it, with ``cat`` a view of its first columns, so
    the models that read codes and stage together share one array instead of stacking their own.
    """

    name: str
    schema: Schema
    ids: np.ndarray
    time: np.ndarray
    cat: np.ndarray
    num: np.ndarray
    raw: pd.DataFrame
    texts: dict[str, Sequence[str]]
    stage: np.ndarray | None
    h_text: np.ndarray | None = None
    _codes: np.ndarray | None = field(default=None, repr=False)
    _label: np.ndarray | None = field(default=None, repr=False)
    _outcomes: pd.DataFrame | None = field(default=None, repr=False)
    _p_true: np.ndarray | None = field(default=None, repr=False)
    _p_true_table: np.ndarray | None = field(default=None, repr=False)
    protected: bool = False
    reads: Counter = field(default_factory=Counter, repr=False, compare=False)

    def __len__(self) -> int:
        return len(self.ids)

    def _guard(self, what: str) -> None:
        self.reads[what] += 1
        if self.protected:
            raise OutcomeAccessError(f"the {what} of the {self.name} split are hidden from methods")

    @property
    def y(self) -> np.ndarray:
        """Labels (0/1). Raises on the test split."""
        self._guard("labels")
        return self._label

    @property
    def outcomes(self) -> pd.DataFrame | None:
        """Outcome funnel columns (``final_stage``, ``call_seconds``), or None when the data has none.

        Training supervision only (HPRO); raises on the test split."""
        self._guard("outcomes")
        return self._outcomes

    def p_true(self, table_only: bool = False) -> np.ndarray:
        """The true conversion probability — or, ``table_only``, the probability given everything but the
        text — for the oracle rows only (reads are counted separately)."""
        self.reads["p_true"] += 1
        column = self._p_true_table if table_only else self._p_true
        if column is None:
            name = "p_true_table" if table_only else "p_true"
            raise DataError(f"dataset '{self.schema.dataset}' has no {name} column")
        return column

    @property
    def has_p_true(self) -> bool:
        return self._p_true is not None

    @property
    def has_p_true_table(self) -> bool:
        return self._p_true_table is not None

    def numeric(self, column: str) -> np.ndarray:
        """A raw numeric feature as float64 (NaN where missing)."""
        return pd.to_numeric(self.raw[column], errors="coerce").to_numpy(dtype=np.float64)

    def codes(self) -> np.ndarray:
        """``cat``, then the current stage as one more categorical (depth + 1; unknown = 0, a level of
        its own) where the data has one: the categorical inputs of every table-only model
        (names and sizes: ``schema.table_categorical``)."""
        cat = self.cat
        if not self.schema.has_stage:
            return cat
        stage = self.stage  # read, so a watched split logs the stage
        return np.column_stack([cat, stage + 1]) if self._codes is None else self._codes

    def take(self, idx: np.ndarray) -> "Split":
        """The rows ``idx`` as a new split (same protection, fresh read counter)."""
        def pick(a):
            return None if a is None else a[idx]
        codes = pick(self._codes)
        return replace(self, ids=self.ids[idx], time=self.time[idx], num=self.num[idx],
                       cat=self.cat[idx] if codes is None else codes[:, :self.cat.shape[1]], _codes=codes,
                       raw=self.raw.iloc[idx].reset_index(drop=True),
                       texts={k: v.take(idx) if isinstance(v, TextColumn) else [v[i] for i in idx]
                              for k, v in self.texts.items()},
                       stage=pick(self.stage), h_text=pick(self.h_text), _label=pick(self._label),
                       _outcomes=None if self._outcomes is None else self._outcomes.iloc[idx].reset_index(drop=True),
                       _p_true=pick(self._p_true), _p_true_table=pick(self._p_true_table), reads=Counter())

    def with_h_text(self, h_text: np.ndarray) -> "Split":
        if h_text.shape[0] != len(self):
            raise DataError(f"h_text has {h_text.shape[0]} rows but the {self.name} split has {len(self)} leads")
        return replace(self, h_text=np.asarray(h_text, dtype=np.float32), reads=self.reads)


@dataclass(frozen=True)
class SplitSet:
    train: Split
    valid: Split
    test: Split
    truth: Truth

    def with_train_budget(self, n: int, seed: int) -> "SplitSet":
        """Train cut to ``n`` leads, and valid to as many leads pro rata (a learning curve's budget of labelled
        leads), test untouched. Nested and stratified: each class is put in one fixed random order (``seed``
        only: the same leads for every method) and the first ``round(n · share)`` of each are kept, so a
        smaller budget's leads are a subset of a larger one's and every size keeps the split's positive
        share (at least one positive)."""
        if n >= len(self.train):
            return self
        n_valid = round(n * len(self.valid) / max(len(self.train), 1))
        return replace(self, train=_nested(self.train, n, seed), valid=_nested(self.valid, n_valid, seed))


class Dataset:
    """A dataset loaded through its spec. ``frame`` holds only the spec's columns."""

    def __init__(self, spec: DatasetSpec, frame: pd.DataFrame, fingerprint: str, warnings: tuple[str, ...] = ()):
        self.spec, self.frame, self.fingerprint, self.warnings = spec, frame, fingerprint, warnings

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, spec: DatasetSpec) -> "Dataset":
        """Read and validate; raises the first validation error (``leadrank validate`` lists them all)."""
        report = check(spec)
        report.raise_for_errors()
        return cls(spec, report.ingested.frame, report.ingested.fingerprint, tuple(map(str, report.warnings)))

    def split_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of (train, valid, test) by the spec's split rule."""
        return split_indices(self.spec, self.frame)

    def splits(self, test_positives: int | None = None, test_negatives: int | None = None,
               subsample_seed: int = 0) -> SplitSet:
        """Encoded train/valid/test; test optionally a fixed-seed case-control sample
        (:class:`~feature_store.evaluation.EvalSample`).

        The sample depends only on the dataset, the two sizes and ``subsample_seed`` — never on
        a method or its seed — so every method of a table is scored on the same leads."""
        fit, valid, test = self.split_indices()
        sp, label = self.spec, self.frame[self.spec.label].to_numpy()
        test, sample = case_control(test, label[test], test_positives, test_negatives, subsample_seed)
        enc = TableEncoder(sp.categorical, sp.numeric).fit(self.frame, fit)
        schema = Schema(dataset=sp.name, categorical=sp.categorical, numeric=enc.numeric_names, text=sp.text,
                        cardinalities=enc.cardinalities, stage_order=sp.stage_order if sp.current_stage else (),
                        final_stage_order=sp.outcomes.final_stage_order, groups=sp.feature_groups(),
                        numeric_raw=sp.numeric, time_column=sp.time)
        ids = lead_ids(sp, self.frame)
        stage = _stage_depth(self.frame[sp.current_stage], sp.stage_order) if sp.current_stage else None
        texts = {c: TextColumn.arrow(self.frame[c]) for c in sp.text}  # once per column, shared by the splits
        parts = [self._make_split(name, idx, ids[idx], enc, schema, stage, texts, protected=(name == "test"))
                 for name, idx in (("train", fit), ("valid", valid), ("test", test))]
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed blocks (the takes') otherwise
        y = label[test].astype(np.int8)
        return SplitSet(*parts, truth=Truth(ids=parts[2].ids, label=y, weight=sample.weights(y), sample=sample))

    def _make_split(self, name: str, idx: np.ndarray, ids: np.ndarray, enc: TableEncoder, schema: Schema,
                    stage: np.ndarray | None, texts: dict[str, pa.ChunkedArray], protected: bool) -> Split:
        """The rows ``idx``, taken column by column from the frame (never the whole frame, whose texts
        stay where they are: ``texts`` reads them through :class:`TextColumn`)."""
        sp, frame = self.spec, self.frame

        def column(c: str | None) -> pd.Series | None:
            return frame[c].iloc[idx].reset_index(drop=True) if c else None

        def numbers(c: str | None) -> np.ndarray | None:
            return frame[c].to_numpy(dtype=np.float64)[idx] if c else None

        cat, num = enc.transform(frame, idx)
        codes = None
        if stage is not None:  # codes() as one array, ``cat`` a view of it
            codes = np.empty((len(idx), cat.shape[1] + 1), dtype=cat.dtype)
            codes[:, :-1], codes[:, -1] = cat, stage[idx] + 1
            cat, stage = codes[:, :-1], stage[idx]
        outcomes = None
        if sp.outcomes.columns:
            outcomes = pd.DataFrame({"final_stage": column(sp.outcomes.final_stage),
                                     "call_seconds": column(sp.outcomes.call_seconds)})
        time = frame[sp.time].to_numpy()[idx] if sp.time else np.zeros(len(idx), dtype="datetime64[ns]")
        return Split(
            name=name, schema=schema, ids=ids, time=time, cat=cat, num=num, _codes=codes,
            raw=frame[list(sp.categorical + sp.numeric)].iloc[idx].reset_index(drop=True),
            texts={c: TextColumn(chunks, idx) for c, chunks in texts.items()},
            stage=stage, _label=frame[sp.label].to_numpy()[idx].astype(np.int8), _outcomes=outcomes,
            _p_true=numbers(sp.p_true), _p_true_table=numbers(sp.p_true_table), protected=protected)


def _stage_depth(column: pd.Series, order: tuple) -> np.ndarray:
    """Each lead's current-stage depth in ``order`` (-1 where missing or not in it), int64."""
    codes, uniques = pd.factorize(column)
    depth = {s: i for i, s in enumerate(order)}
    lookup = np.array([depth.get(v, -1) for v in uniques.tolist()] + [-1], dtype=np.int64)
    return lookup[codes]


def _nested(split: Split, n: int, seed: int) -> Split:
    """The first ``n`` leads of ``split`` in a fixed per-class random order, both classes pro rata."""
    if n >= len(split):
        return split
    y = split.y
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    rng = np.random.default_rng([seed, 8191])
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    n_pos = min(len(pos), max(1, round(n * len(pos) / len(y))))
    return split.take(np.sort(np.concatenate([pos[:n_pos], neg[:n - n_pos]])))

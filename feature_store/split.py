"""What a method is handed: one split's arrays, texts and stage, with its labels hidden on test.

Models never read files. A :class:`Split` holds encoded arrays, raw feature
values (for prompts), texts, the current stage and time. Labels and outcomes
are readable on train/valid only: on the test split they raise
:class:`OutcomeAccessError`, and every attempt is counted so the method
contract can prove a method never looked. A :class:`SplitSet` is the three
parts of a dataset plus the test truth (held by the runner), and cuts the
nested training subsamples of a learning curve.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa

from feature_store.errors import DataError, OutcomeAccessError
from feature_store.evaluation import Truth
from feature_store.sampling import MIN_TRAIN_POSITIVES, nested_sample
from feature_store.schema import Schema


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
        only: the same leads for every method) and the first ones of each are kept, so a smaller budget's
        leads are a subset of a larger one's. Train keeps the split's positive share but at least
        ``MIN_TRAIN_POSITIVES`` positives, valid its share (at least one). ``n`` = 0 leaves train and valid
        empty: the zero-shot point, where only a method that needs no label can score."""
        if n >= len(self.train):
            return self
        n_valid = round(n * len(self.valid) / max(len(self.train), 1))
        return replace(self, train=_nested(self.train, n, seed, MIN_TRAIN_POSITIVES),
                       valid=_nested(self.valid, n_valid, seed))


def _nested(split: Split, n: int, seed: int, floor: int = 0) -> Split:
    """The leads of ``split`` that :func:`~feature_store.sampling.nested_sample` keeps for a budget of ``n``."""
    return split if n >= len(split) else split.take(nested_sample(split.y, n, seed, floor))

"""The feature store: loads a dataset by its spec, splits it, encodes it, hands out splits.

Models never read files. They receive :class:`Split` objects holding encoded
arrays, raw feature values (for prompts), texts, the current stage and time.
Labels and outcomes are readable on train/valid only: on the test split they
raise :class:`OutcomeAccessError`, and every attempt is counted so the method
contract test can prove a method never looked.

Split rule (temporal): leads are ordered by (time, id). With ``c`` the index of
the first lead of the newest ``test_fraction``, ``t_cut = time[c]``; train is
``time < t_cut`` and test is ``time >= t_cut``. Leads tied with the boundary
time therefore all go to test, so train and test never share a timestamp
(test may be slightly larger than the fraction asked for). The validation
slice is cut from train by the same rule with ``valid_fraction``.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from feature_store.encoders import TableEncoder
from feature_store.errors import DataError, OutcomeAccessError
from feature_store.spec import DatasetSpec


@dataclass(frozen=True)
class Schema:
    """What a model may know about the columns (names, sizes, roles); no values."""

    dataset: str
    categorical: tuple[str, ...]
    numeric: tuple[str, ...]  # encoded numeric columns, missing-value flags included
    text: tuple[str, ...]
    cardinalities: dict[str, int]
    stage_order: tuple[str, ...]
    final_stage_order: tuple[str, ...]
    groups: dict[str, tuple[str, ...]]
    split_kind: str

    @property
    def has_text(self) -> bool:
        return bool(self.text)

    @property
    def has_stage(self) -> bool:
        return bool(self.stage_order)


@dataclass(frozen=True, eq=False)
class Split:
    """One part of a dataset, as models see it.

    ``cat``: int64 codes (n, n_cat), 0 = unseen in train. ``num``: float32 (n, n_num),
    scaled with train statistics. ``raw``: the untouched feature values (prompts and
    models with native categorical handling). ``texts``: text columns. ``stage``:
    current-stage depth (0 = shallowest, -1 = unknown) or None. ``h_text``: text
    embeddings, attached by the runner for methods that ask for them.
    """

    name: str
    schema: Schema
    ids: np.ndarray
    time: np.ndarray
    cat: np.ndarray
    num: np.ndarray
    raw: pd.DataFrame
    texts: dict[str, list[str]]
    stage: np.ndarray | None
    h_text: np.ndarray | None = None
    _label: np.ndarray | None = field(default=None, repr=False)
    _outcomes: pd.DataFrame | None = field(default=None, repr=False)
    _p_true: np.ndarray | None = field(default=None, repr=False)
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

    def p_true(self) -> np.ndarray:
        """The true conversion probability, for the oracle row only (counted separately)."""
        self.reads["p_true"] += 1
        if self._p_true is None:
            raise DataError(f"dataset '{self.schema.dataset}' has no p_true column")
        return self._p_true

    @property
    def has_p_true(self) -> bool:
        return self._p_true is not None

    def numeric(self, column: str) -> np.ndarray:
        """A raw numeric feature as float64 (NaN where missing)."""
        return pd.to_numeric(self.raw[column], errors="coerce").to_numpy(dtype=np.float64)

    def text(self, column: str | None = None) -> list[str]:
        """A text column ('' where missing); the first one by default."""
        if not self.schema.text:
            raise DataError(f"dataset '{self.schema.dataset}' has no text column")
        return self.texts[column or self.schema.text[0]]

    def take(self, idx: np.ndarray) -> "Split":
        """The rows ``idx`` as a new split (same protection, fresh read counter)."""
        def pick(a):
            return None if a is None else a[idx]
        return replace(self, ids=self.ids[idx], time=self.time[idx], cat=self.cat[idx], num=self.num[idx],
                       raw=self.raw.iloc[idx].reset_index(drop=True),
                       texts={k: [v[i] for i in idx] for k, v in self.texts.items()},
                       stage=pick(self.stage), h_text=pick(self.h_text), _label=pick(self._label),
                       _outcomes=None if self._outcomes is None else self._outcomes.iloc[idx].reset_index(drop=True),
                       _p_true=pick(self._p_true), reads=Counter())

    def with_h_text(self, h_text: np.ndarray) -> "Split":
        if h_text.shape[0] != len(self):
            raise DataError(f"h_text has {h_text.shape[0]} rows but the {self.name} split has {len(self)} leads")
        return replace(self, h_text=np.asarray(h_text, dtype=np.float32), reads=self.reads)


@dataclass(frozen=True)
class Truth:
    """Test labels, held by the runner (never by a method) to compute metrics."""

    ids: np.ndarray
    label: np.ndarray


@dataclass(frozen=True)
class SplitSet:
    train: Split
    valid: Split
    test: Split
    truth: Truth
    encoder: TableEncoder


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
        from feature_store.validate import check  # one place that knows file formats and data rules

        report = check(spec)
        report.raise_for_errors()
        return cls(spec, report.ingested.frame, report.ingested.fingerprint, tuple(map(str, report.warnings)))

    # ---- splitting ----------------------------------------------------------
    def split_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of (train, valid, test) by the spec's split rule."""
        s, label = self.spec.split, self.frame[self.spec.label].to_numpy()
        if s.kind == "random":
            from sklearn.model_selection import train_test_split

            idx = np.arange(len(self.frame))
            strat = label if np.bincount(label.astype(int)).min() >= 2 else None
            rest, test = train_test_split(idx, test_size=s.test_fraction, random_state=s.seed, stratify=strat)
            strat = label[rest] if strat is not None else None
            fit, valid = train_test_split(rest, test_size=s.valid_fraction, random_state=s.seed, stratify=strat)
            return np.sort(fit), np.sort(valid), np.sort(test)
        t = self.frame[self.spec.time].to_numpy()
        order = np.lexsort((self.frame[self.spec.id].to_numpy(), t))
        rest, test = _newest(order, t, s.test_fraction, "test", self.spec)
        fit, valid = _newest(rest, t, s.valid_fraction, "validation", self.spec)
        return fit, valid, test

    def splits(self, test_max_leads: int | None = None, subsample_seed: int = 0) -> SplitSet:
        """Encoded train/valid/test; test optionally a fixed-seed stratified subsample.

        The subsample depends only on the dataset and ``subsample_seed`` — never on
        a method or its seed — so every method of a table is scored on the same leads."""
        fit, valid, test = self.split_indices()
        if test_max_leads and len(test) > test_max_leads:
            test = _stratified_subsample(test, self.frame[self.spec.label].to_numpy()[test],
                                         test_max_leads, subsample_seed)
        sp = self.spec
        enc = TableEncoder(sp.categorical, sp.numeric).fit(self.frame.iloc[fit])
        schema = Schema(dataset=sp.name, categorical=sp.categorical, numeric=enc.numeric_names, text=sp.text,
                        cardinalities=enc.cardinalities, stage_order=sp.stage_order if sp.current_stage else (),
                        final_stage_order=sp.outcomes.final_stage_order, groups=sp.feature_groups(),
                        split_kind=sp.split.kind)
        parts = [self._make_split(name, idx, enc, schema, protected=(name == "test"))
                 for name, idx in (("train", fit), ("valid", valid), ("test", test))]
        truth = Truth(ids=parts[2].ids, label=self.frame[sp.label].to_numpy()[test].astype(np.int8))
        return SplitSet(*parts, truth=truth, encoder=enc)

    def _make_split(self, name: str, idx: np.ndarray, enc: TableEncoder, schema: Schema, protected: bool) -> Split:
        sp, df = self.spec, self.frame.iloc[idx].reset_index(drop=True)
        cat, num = enc.transform(df)
        stage = None
        if sp.current_stage:
            depth = {s: i for i, s in enumerate(sp.stage_order)}
            stage = np.array([depth.get(v, -1) for v in df[sp.current_stage].astype(object).tolist()], dtype=np.int64)
        outcomes = None
        if sp.outcomes.columns:
            outcomes = pd.DataFrame({
                "final_stage": df[sp.outcomes.final_stage] if sp.outcomes.final_stage else None,
                "call_seconds": df[sp.outcomes.call_seconds] if sp.outcomes.call_seconds else None})
        time = df[sp.time].to_numpy() if sp.time else np.zeros(len(df), dtype="datetime64[ns]")
        return Split(
            name=name, schema=schema, ids=df[sp.id].to_numpy(), time=time, cat=cat, num=num,
            raw=df[list(sp.features)],
            texts={c: df[c].fillna("").astype(str).tolist() for c in sp.text},
            stage=stage, _label=df[sp.label].to_numpy().astype(np.int8), _outcomes=outcomes,
            _p_true=df[sp.p_true].to_numpy(dtype=np.float64) if sp.p_true else None, protected=protected)


def _newest(order: np.ndarray, t: np.ndarray, fraction: float, what: str, spec: DatasetSpec):
    """Split ``order`` (sorted by time) into (older, newest ``fraction``); ties go to the newer part."""
    if len(order) == 0:
        raise DataError(f"no leads left to cut a {what} slice from", file=spec.source)
    c = min(int(math.ceil((1 - fraction) * len(order))), len(order) - 1)
    t_cut = t[order[c]]
    older = order[t[order] < t_cut]
    newer = order[t[order] >= t_cut]
    if len(older) == 0:
        raise DataError(f"all leads share the boundary time {t_cut}, so no temporal {what} split is possible",
                        file=spec.source, column=spec.time, hint="use 'split: {kind: random}'")
    return older, newer


def _stratified_subsample(idx: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, 31337])
    pos, neg = idx[y == 1], idx[y != 1]
    n_pos = int(round(n * len(pos) / len(idx)))
    keep = np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n - n_pos, replace=False)])
    return np.sort(keep)


def file_digest(paths: list[Path], extra: bytes = b"") -> str:
    """Content hash of the data files (and the spec), the data fingerprint of every result."""
    h = hashlib.sha256(extra)
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]

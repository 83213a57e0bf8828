"""Which leads each part of a dataset and each subsample holds: the one place that draws them.

**The split.** Both :mod:`feature_store.validate` (to check that every part
holds both classes) and :class:`feature_store.store.Dataset` (to hand the parts
to models) call :func:`split_indices`, so what is checked is what is run.

Temporal rule: leads are ordered by (time, lead id). With ``c`` the index of
the first lead of the newest ``test_fraction``, ``t_cut = time[c]``; train is
``time < t_cut`` and test is ``time >= t_cut``. Leads tied with the boundary
time therefore all go to test, so train and test never share a timestamp
(test may be slightly larger than the fraction asked for). The validation
slice is cut from train by the same rule with ``valid_fraction``.

With ``split.gap_days`` (the embargo), leads scored in the ``gap_days`` before
``t_cut`` are dropped from train and valid: in a real export their labels may
only resolve after the cutoff.

Random rule: a stratified ``train_test_split`` with the spec's seed, test
first, then valid out of the rest.

**Subsamples.** Positives are rare (about 1.4 % of leads), so every subsample
of the suite is drawn per class: a number of positives and a number of
negatives, each at random — the evaluation's case-control test sample
(:mod:`feature_store.evaluation`), a learning curve's nested training budgets
(:meth:`feature_store.split.SplitSet.with_train_budget`), the LLM rankers'
training subsample and the embedding providers' folds. The random draws come
from a generator seeded by the caller, positives first, so a fixed seed gives
the same leads on every machine.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from feature_store.errors import DataError
from feature_store.spec import DatasetSpec

PARTS = ("train", "valid", "test")


def lead_ids(spec: DatasetSpec, frame: pd.DataFrame) -> np.ndarray:
    """The id column, or the row number (0-based frame position) where the spec names none."""
    return frame[spec.id].to_numpy() if spec.id else np.arange(len(frame))


def split_indices(spec: DatasetSpec, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row indices of (train, valid, test) of a typed, validated frame by the spec's split rule.

    Raises DataError when the rule cannot cut the data (e.g. every lead has the same time)."""
    s, label = spec.split, frame[spec.label].to_numpy()
    if s.kind == "random":
        idx = np.arange(len(frame))
        strat = label if np.bincount(label.astype(int)).min() >= 2 else None
        rest, test = train_test_split(idx, test_size=s.test_fraction, random_state=s.seed, stratify=strat)
        strat = label[rest] if strat is not None else None
        fit, valid = train_test_split(rest, test_size=s.valid_fraction, random_state=s.seed, stratify=strat)
        return np.sort(fit), np.sort(valid), np.sort(test)
    t = frame[spec.time].to_numpy()
    order = np.lexsort((lead_ids(spec, frame), t))
    rest, test = _newest(order, t, s.test_fraction, "test", spec.time)
    if s.gap_days:  # the embargo: labels of leads scored just before the cutoff may resolve after it
        rest = rest[t[rest] < t[test[0]] - np.timedelta64(int(round(s.gap_days * 86400)), "s")]
    fit, valid = _newest(rest, t, s.valid_fraction, "validation", spec.time)
    return fit, valid, test


def _newest(order: np.ndarray, t: np.ndarray, fraction: float, what: str, time_column: str | None):
    """Split ``order`` (sorted by time) into (older, newest ``fraction``); ties go to the newer part."""
    if len(order) == 0:
        raise DataError(f"no leads left to cut a {what} slice from")
    c = min(int(math.ceil((1 - fraction) * len(order))), len(order) - 1)
    t_cut = t[order[c]]
    older = order[t[order] < t_cut]
    newer = order[t[order] >= t_cut]
    if len(older) == 0:
        raise DataError(f"all leads share the boundary time {pd.Timestamp(t_cut)}, so no temporal {what} split "
                        "is possible", column=time_column, hint="use 'split: {kind: random}'")
    return older, newer


def both_classes(y: np.ndarray) -> bool:
    """True when ``y`` holds at least one positive and one negative (AUC is defined)."""
    y = np.asarray(y)
    return bool(len(y)) and bool((y == 1).any()) and bool((y != 1).any())


def class_sample(y: np.ndarray, n_pos: int, n_neg: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted positions of ``n_pos`` random positives and ``n_neg`` random negatives of ``y``."""
    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    return np.sort(np.concatenate([rng.choice(pos, n_pos, replace=False), rng.choice(neg, n_neg, replace=False)]))


def stratified_folds(y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number in ``[0, k)`` per lead; positives and negatives spread evenly over the folds."""
    y = np.asarray(y)
    rng = np.random.default_rng([seed, 4242])
    fold = np.empty(len(y), dtype=np.int64)
    for cls in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == cls))
        fold[idx] = np.arange(len(idx)) % k
    return fold


MIN_TRAIN_POSITIVES = 5
"""The fewest positives a nested training budget keeps (where the split has them). Pro rata, 100 leads
of a 1.4 % world hold one positive: no learner fits a class it has seen once, and a five-fold search (the
classical rows' C grid) needs one per fold. Below ~350 such leads the budget therefore holds more positives
than its share; a learning curve's column header shows the count and its note names the columns lifted."""


def nested_positives(y: np.ndarray, n: int, floor: int = 0) -> int:
    """How many positives a nested budget of ``n`` leads of ``y`` holds: the split's share of ``n``, at least
    ``floor`` and at least one, never more than the split has, and one negative left where ``n`` ≥ 2."""
    y = np.asarray(y)
    n_pos = int((y == 1).sum())
    if n <= 0 or not len(y):
        return 0
    return min(n_pos, max(1, floor, round(n * n_pos / len(y))), max(n - 1, 1))


def nested_sample(y: np.ndarray, n: int, seed: int, floor: int = 0) -> np.ndarray:
    """Sorted positions of the first ``n`` leads of ``y`` in a fixed per-class random order, the positives'
    count from :func:`nested_positives` (pro rata, at least ``floor``): a smaller ``n``'s leads are a subset
    of a larger one's, since both counts grow with ``n``. ``n`` = 0 keeps no lead (a zero-shot point)."""
    y = np.asarray(y)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    rng = np.random.default_rng([seed, 8191])
    pos, neg = rng.permutation(pos), rng.permutation(neg)
    n_pos = nested_positives(y, n, floor)
    return np.sort(np.concatenate([pos[:n_pos], neg[:max(n - n_pos, 0)]]))

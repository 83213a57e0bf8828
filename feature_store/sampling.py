"""Class-aware sampling shared by the store, the LLM rankers and the embedding providers.

Positives are rare (about 1.4 % of leads), so every subsample of the suite is
drawn per class: a number of positives and a number of negatives, each at
random. The random draws come from the caller's generator, positives first,
so a fixed seed gives the same leads on every machine.
"""

from __future__ import annotations

import numpy as np


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

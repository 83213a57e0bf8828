"""Ranking metrics with bootstrap confidence intervals.

Definitions
-----------
* ``auc``: ROC AUC (scikit-learn's ``roc_auc_score`` for the point value; tied
  scores count one half, as usual).
* ``p_at_K``: share of positives among the top ``k = ceil(K/100 * N)`` leads.
* ``r_at_K``: share of all positives that are in the top ``k``.

Tie rule of P@K and R@K: leads are ranked by score, descending. When the cut at
``k`` falls inside a group of tied scores, that group contributes its positives
*pro rata*: if ``m`` of the ``k`` slots go to a tie group of size ``g`` holding
``p`` positives, it adds ``m * p / g`` positives. This is exactly the expected
value under a uniformly random tie-break, it is deterministic, and it does not
depend on lead ids or row order. A constant scorer therefore gets P@K equal to
the base rate — a rule-based ranker with many ties (Funnel+Recency) is not
flattered or punished by an arbitrary order.

Confidence intervals: stratified bootstrap over test leads — each resample
draws the positives and the negatives separately with replacement, keeping
their counts — and the 2.5 / 97.5 percentiles. Resamples are represented as
multiplicity weights, so every metric is computed for a whole batch of
resamples with a few vectorised array operations, and the *same* weights can be
applied to several score vectors for paired comparisons (gain, lift).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
import numpy as np
from sklearn.metrics import roc_auc_score

from feature_store.errors import DataError
from feature_store.sampling import both_classes

METRIC_KEYS = ("auc", "p_at_0.1", "p_at_1.0", "r_at_5.0")


@dataclass(frozen=True)
class Estimate:
    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def parse_key(key: str) -> tuple[str, float | None]:
    """'auc' -> ('auc', None); 'p_at_1.0' -> ('p', 1.0)."""
    if key == "auc":
        return "auc", None
    kind, _, pct = key.partition("_at_")
    if kind not in ("p", "r") or not pct:
        raise ValueError(f"unknown metric '{key}'")
    return kind, float(pct)


def top_k(n: int, pct: float) -> int:
    """Number of leads in the top ``pct`` percent: ceil(pct/100 * n), at least 1."""
    return max(1, math.ceil(pct / 100.0 * n - 1e-9))


class Ranking:
    """Scores grouped into tie groups in descending order, shared by all resamples."""

    def __init__(self, scores: np.ndarray, y: np.ndarray):
        scores = np.asarray(scores, dtype=np.float64)
        self.order = np.argsort(-scores, kind="stable")
        s = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        self.y_sorted = np.asarray(y)[self.order]
        # positives are few: sum their weights per group over the positive columns only
        group_of = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1
        pos_group = group_of[self.y_sorted == 1]
        self.pos_groups = np.unique(pos_group)
        self.pos_starts = np.searchsorted(pos_group, self.pos_groups)

    def grouped(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per tie group: total weight and positive weight, shape (B, G)."""
        ws = w[:, self.order]
        wg = np.add.reduceat(ws, self.starts, axis=1).astype(np.float64)
        pg = np.add.reduceat(ws[:, self.y_sorted == 1], self.pos_starts, axis=1).astype(np.float64)
        out = np.zeros_like(wg)
        out[:, self.pos_groups] = pg
        return wg, out


def _weighted(key: str, rank: Ranking, w: np.ndarray) -> np.ndarray:
    """Metric ``key`` for each row of multiplicity weights ``w`` (B, N)."""
    return _from_groups(key, *rank.grouped(w))


def _from_groups(key: str, wg: np.ndarray, pg: np.ndarray) -> np.ndarray:
    """Metric ``key`` from per-tie-group total and positive weights (B, G), groups by descending score."""
    n_pos = pg.sum(1)
    n_all = wg.sum(1)
    kind, pct = parse_key(key)
    if kind == "auc":
        ng = wg - pg
        n_neg = ng.sum(1)
        neg_below = n_neg[:, None] - np.cumsum(ng, 1)  # negatives strictly below each (descending) group
        return (pg * (neg_below + 0.5 * ng)).sum(1) / (n_pos * n_neg)
    k = np.array([top_k(int(round(n)), pct) for n in n_all], dtype=np.float64)
    cw, cp = np.cumsum(wg, 1), np.cumsum(pg, 1)
    g = np.argmax(cw >= k[:, None], axis=1)  # the group where the cut falls
    rows = np.arange(len(k))
    before_w, before_p = cw[rows, g] - wg[rows, g], cp[rows, g] - pg[rows, g]
    hits = before_p + (k - before_w) * pg[rows, g] / wg[rows, g]
    return hits / k if kind == "p" else hits / n_pos


def point(key: str, y: np.ndarray, scores: np.ndarray) -> float:
    """The metric on the full test set (AUC from scikit-learn)."""
    y, scores = np.asarray(y), np.asarray(scores, dtype=np.float64)
    if key == "auc":
        return float(roc_auc_score(y, scores))
    return float(_weighted(key, Ranking(scores, y), np.ones((1, len(y))))[0])


def precision_at(y: np.ndarray, scores: np.ndarray, pct: float) -> float:
    return point(f"p_at_{pct}", y, scores)


def recall_at(y: np.ndarray, scores: np.ndarray, pct: float) -> float:
    return point(f"r_at_{pct}", y, scores)


def bootstrap_weights(y: np.ndarray, n_resamples: int, seed: int, max_cells: int = 4_000_000
                      ) -> list[np.ndarray]:
    """Stratified bootstrap resamples as multiplicity weights, in batches of shape (b, N).

    float32 holds the integer multiplicities exactly. The last request is cached:
    rendering a table asks for the same resamples of the same test leads many times."""
    y = np.asarray(y)
    key = (hashlib.sha1(y.tobytes()).hexdigest(), n_resamples, seed, max_cells)
    if _WEIGHTS_CACHE.get("key") == key:
        return _WEIGHTS_CACHE["batches"]
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    rng = np.random.default_rng([seed, 2718])
    batch = max(1, min(n_resamples, max_cells // max(len(y), 1)))
    batches, done = [], 0
    while done < n_resamples:
        b = min(batch, n_resamples - done)
        w = np.zeros((b, len(y)), dtype=np.float32)
        if len(pos):
            w[:, pos] = rng.multinomial(len(pos), np.full(len(pos), 1.0 / len(pos)), size=b)
        if len(neg):
            w[:, neg] = rng.multinomial(len(neg), np.full(len(neg), 1.0 / len(neg)), size=b)
        done += b
        batches.append(w)
    _WEIGHTS_CACHE.update(key=key, batches=batches)
    return batches


_WEIGHTS_CACHE: dict = {}


def bootstrap(y: np.ndarray, score_sets: list[np.ndarray], keys: tuple[str, ...] = METRIC_KEYS,
              n_resamples: int = 1000, seed: int = 0) -> dict[str, np.ndarray]:
    """Metric values per resample: ``{key: array (len(score_sets), n_resamples)}``.

    All score vectors see the same resamples, so differences between rows of the
    result are paired comparisons on the same test leads."""
    ranks = [Ranking(s, y) for s in score_sets]
    out: dict[str, list[list[np.ndarray]]] = {k: [[] for _ in ranks] for k in keys}
    for w in bootstrap_weights(y, n_resamples, seed):
        for i, r in enumerate(ranks):
            groups = r.grouped(w)  # once per score vector and batch, shared by every metric
            for k in keys:
                out[k][i].append(_from_groups(k, *groups))
    return {k: np.stack([np.concatenate(parts) for parts in v]) for k, v in out.items()}


def interval(samples: np.ndarray, value: float, level: float = 0.95) -> Estimate:
    defined = samples[~np.isnan(samples)]  # a ratio (lift) is 0/0 where both resampled to 0; ±inf stays
    if defined.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    lo, hi = np.percentile(defined, [50 * (1 - level), 50 * (1 + level)])
    return Estimate(float(value), float(lo), float(hi))


def evaluate(y: np.ndarray, scores: np.ndarray, n_resamples: int = 1000, seed: int = 0,
             keys: tuple[str, ...] = METRIC_KEYS) -> dict[str, Estimate]:
    """Every metric of ``keys`` with its 95 % stratified-bootstrap CI."""
    y = np.asarray(y)
    if not both_classes(y):
        raise DataError("the test split has only one class; AUC, P@K and R@K are undefined",
                        hint="more data, or a split whose test part holds converted and unconverted leads")
    boots = bootstrap(y, [scores], keys, n_resamples, seed)
    return {k: interval(boots[k][0], point(k, y, scores)) for k in keys}

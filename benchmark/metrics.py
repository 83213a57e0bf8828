"""Ranking metrics with bootstrap confidence intervals, for whole test splits and case-control samples.

Definitions
-----------
Every test lead ``i`` carries a weight ``w_i``: 1.0 when the whole test split is
scored; in a case-control sample (all positives up to P, N random negatives) the
inverse of its class's sampling fraction, so a lead stands for the ``w_i`` leads
of the split it represents and the weights sum to the split's size.

* ``auc``: ROC AUC (scikit-learn's ``roc_auc_score``; tied scores count one
  half). Weights that are uniform within a class leave it unchanged, so it is
  computed unweighted.
* ``p_at_K``: weighted share of positives among the top K % of the weight:
  the shortest prefix of the ranking whose weight reaches
  ``k = ceil(K/100 * W)`` (``W`` = total weight), the lead or tie group at the
  boundary counted pro rata. With unit weights this is the top
  ``ceil(K/100 * N)`` leads.
* ``r_at_K``: weighted share of all positives that are in that prefix.

Tie rule of P@K and R@K: leads are ranked by score, descending. When the cut at
``k`` falls inside a group of tied scores (or, with weights, inside one heavy
lead), that group contributes its positives *pro rata*: if weight ``m`` of the
``k`` goes to a tie group of weight ``g`` holding positive weight ``p``, it adds
``m * p / g``. With unit weights this is exactly the expected value under a
uniformly random tie-break, it is deterministic, and it does not depend on lead
ids or row order. A constant scorer therefore gets P@K equal to the base rate —
a rule-based ranker with many ties (Funnel+Recency) is not flattered or
punished by an arbitrary order.

Confidence intervals: stratified bootstrap over test leads — each resample
draws the positives and the negatives separately with replacement, keeping
their counts (which is also how a case-control sample was drawn) — and the
2.5 / 97.5 percentiles. Resamples are represented as multiplicity weights
(times the sampling weights), so every metric is computed for a whole batch of
resamples with a few vectorised array operations, and the *same* weights can be
applied to several score vectors for paired comparisons (gain, lift).

Above ``BINNED_ABOVE`` test leads no resample is spelled out per lead: a ranking's
metrics only see how much weight falls into each tie group holding a positive and
into each run of negatives between two such groups (:class:`Bins`), and the
negatives are drawn straight into those runs (see :func:`bootstrap`). Same
resampling law, another random stream, and memory that grows with the positives
rather than with N (time too, for one score vector).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
import numpy as np
from sklearn.metrics import roc_auc_score

from feature_store.errors import DataError
from feature_store.sampling import both_classes

METRIC_KEYS = ("auc", "p_at_0.1", "p_at_1.0", "r_at_5.0")

BINNED_ABOVE = 20_000
"""Test leads above which :func:`bootstrap` resamples per bin instead of per lead. At or below it the
per-lead draw stays, because the committed results (at most 9,000 test leads) were computed with its
random stream; its cache of all resamples (1,000 x N float32) then stays below 80 MB."""


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
    """Number of leads in the top ``pct`` percent of ``n`` unit-weight leads: ceil(pct/100 * n), at least 1."""
    return int(cut_weight(np.float64(n), pct))


def cut_weight(total: np.ndarray, pct: float) -> np.ndarray:
    """The weight of the top ``pct`` percent: ceil(pct/100 * total), at least 1.

    The tolerance absorbs float error in a sum of sampling weights; with unit weights
    ``pct/100 * N`` is a multiple of 0.001 for the tables' K, far from it."""
    return np.maximum(1.0, np.ceil(pct / 100.0 * np.asarray(total, dtype=np.float64) - 1e-6))


class Ranking:
    """Scores grouped into tie groups in descending order, shared by all resamples."""

    def __init__(self, scores: np.ndarray, y: np.ndarray):
        scores = np.asarray(scores, dtype=np.float64)
        self.order = np.argsort(-scores, kind="stable")
        s = scores[self.order]
        self.starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        self.y_sorted = np.asarray(y)[self.order]
        # positives are few: sum their weights per group over the positive columns only
        self.group_of = np.cumsum(np.r_[True, s[1:] != s[:-1]]) - 1  # tie group of each sorted lead
        pos_group = self.group_of[self.y_sorted == 1]
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


class Bins:
    """A ranking's tie groups merged into the coarsest bins its metrics still tell apart.

    Each tie group holding a positive is a bin of its own (negatives tied with a positive
    matter: AUC counts them one half, and a cut inside the group credits its positives pro
    rata); the negatives-only groups between two such groups form one bin. No metric looks
    inside such a run: AUC only counts the negatives below each positive, and a cut that falls
    anywhere in it adds no hit. So :func:`_from_groups` on the weights summed per bin gives
    what it gives on the tie groups — on ~2 x positives + 1 columns instead of N."""

    def __init__(self, rank: Ranking, pos: np.ndarray, neg: np.ndarray):
        holds = np.zeros(len(rank.starts), dtype=bool)
        holds[rank.pos_groups] = True
        opens = holds | np.r_[True, holds[:-1]]  # a bin starts at a positive's group and right after one
        bin_of_group = np.cumsum(opens) - 1
        self.n = int(bin_of_group[-1]) + 1
        lead_bin = np.empty(len(rank.order), dtype=np.intp)
        lead_bin[rank.order] = bin_of_group[rank.group_of]
        self.neg_bin = lead_bin[neg]
        self.neg_share = np.bincount(self.neg_bin, minlength=self.n) / len(neg)
        pos_bin = lead_bin[pos]
        self._pos_order = np.argsort(pos_bin, kind="stable")
        sorted_bin = pos_bin[self._pos_order]
        self._pos_starts = np.flatnonzero(np.r_[True, sorted_bin[1:] != sorted_bin[:-1]])
        self._pos_bins = sorted_bin[self._pos_starts]

    def positives(self, mult: np.ndarray) -> np.ndarray:
        """Per-positive multiplicities (b, positives) summed per bin, (b, bins)."""
        out = np.zeros((len(mult), self.n))
        out[:, self._pos_bins] = np.add.reduceat(mult[:, self._pos_order], self._pos_starts, axis=1)
        return out


def _weighted(key: str, rank: Ranking, w: np.ndarray) -> np.ndarray:
    """Metric ``key`` for each row of weights ``w`` (B, N)."""
    return _from_groups(key, *rank.grouped(w))


def _from_groups(key: str, wg: np.ndarray, pg: np.ndarray) -> np.ndarray:
    """Metric ``key`` from total and positive weights per tie group or bin (B, G), by descending score."""
    n_pos = pg.sum(1)
    n_all = wg.sum(1)
    kind, pct = parse_key(key)
    if kind == "auc":
        ng = wg - pg
        n_neg = ng.sum(1)
        neg_below = n_neg[:, None] - np.cumsum(ng, 1)  # negatives strictly below each (descending) group
        return (pg * (neg_below + 0.5 * ng)).sum(1) / (n_pos * n_neg)
    k = cut_weight(n_all, pct)
    cw, cp = np.cumsum(wg, 1), np.cumsum(pg, 1)
    g = np.argmax(cw >= k[:, None], axis=1)  # the group where the cut falls
    rows = np.arange(len(k))
    before_w, before_p = cw[rows, g] - wg[rows, g], cp[rows, g] - pg[rows, g]
    hits = before_p + (k - before_w) * pg[rows, g] / wg[rows, g]
    return hits / k if kind == "p" else hits / n_pos


def point(key: str, y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None) -> float:
    """The metric on the scored test leads (AUC from scikit-learn), with sampling weights if given."""
    y, scores = np.asarray(y), np.asarray(scores, dtype=np.float64)
    if key == "auc":
        return float(roc_auc_score(y, scores))
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    return float(_weighted(key, Ranking(scores, y), w[None, :])[0])


def precision_at(y: np.ndarray, scores: np.ndarray, pct: float, weight: np.ndarray | None = None) -> float:
    return point(f"p_at_{pct}", y, scores, weight)


def recall_at(y: np.ndarray, scores: np.ndarray, pct: float, weight: np.ndarray | None = None) -> float:
    return point(f"r_at_{pct}", y, scores, weight)


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
              n_resamples: int = 1000, seed: int = 0, weight: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Metric values per resample: ``{key: array (len(score_sets), n_resamples)}``.

    All score vectors see the same resamples, so differences between rows of the
    result are paired comparisons on the same test leads. ``weight``: sampling weights
    (uniform within a class), multiplied into every resample's multiplicities.

    Up to ``BINNED_ABOVE`` test leads every resample is a row of per-lead multiplicities
    (:func:`bootstrap_weights`); above it, :func:`_bootstrap_binned`."""
    y = np.asarray(y)
    w_pos, w_neg = _class_weights(y, weight)
    ranks = [Ranking(s, y) for s in score_sets]
    if len(y) > BINNED_ABOVE and both_classes(y):
        return _bootstrap_binned(y, ranks, keys, n_resamples, seed, w_pos, w_neg)
    sampled = weight is not None and not np.all(np.asarray(weight) == 1.0)
    out: dict[str, list[list[np.ndarray]]] = {k: [[] for _ in ranks] for k in keys}
    for w in bootstrap_weights(y, n_resamples, seed):
        if sampled:
            w = w * np.asarray(weight, dtype=np.float64)[None, :]
        for i, r in enumerate(ranks):
            groups = r.grouped(w)  # once per score vector and batch, shared by every metric
            for k in keys:
                out[k][i].append(_from_groups(k, *groups))
    return {k: np.stack([np.concatenate(parts) for parts in v]) for k, v in out.items()}


def _class_weights(y: np.ndarray, weight: np.ndarray | None) -> tuple[float, float]:
    """The sampling weight of a positive and of a negative. The metrics assume weights uniform within
    a class (AUC is computed unweighted), and the binned draw never tells two negatives apart."""
    if weight is None:
        return 1.0, 1.0
    w, pos = np.asarray(weight, dtype=np.float64), y == 1
    per_class = [w[pos], w[~pos]]
    if any(len(c) and c.min() != c.max() for c in per_class):
        raise ValueError("sampling weights must be uniform within each class (a case-control sample)")
    return tuple(float(c[0]) if len(c) else 1.0 for c in per_class)


def _bootstrap_binned(y: np.ndarray, ranks: list[Ranking], keys: tuple[str, ...], n_resamples: int, seed: int,
                      w_pos: float, w_neg: float, max_cells: int = 4_000_000) -> dict[str, np.ndarray]:
    """:func:`bootstrap` with each resample summed per :class:`Bins` column of every ranking, never per lead.

    The positives (few) get per-lead multiplicities, one multinomial as in :func:`bootstrap_weights`,
    shared by all rankings. The negatives: see :func:`_negatives_per_bin`. Batches of resamples keep
    every (resamples, bins) array under ``max_cells``; nothing is cached."""
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    bins = [Bins(r, pos, neg) for r in ranks]
    rng = np.random.default_rng([seed, 2718])
    batch = max(1, min(n_resamples, max_cells // max(len(pos), *(b.n for b in bins))))
    out: dict[str, list[list[np.ndarray]]] = {k: [[] for _ in bins] for k in keys}
    for done in range(0, n_resamples, batch):
        b = min(batch, n_resamples - done)
        pos_mult = rng.multinomial(len(pos), np.full(len(pos), 1.0 / len(pos)), size=b)
        for i, (bn, neg_counts) in enumerate(zip(bins, _negatives_per_bin(rng, bins, b, len(neg)))):
            pg = w_pos * bn.positives(pos_mult)
            wg = pg + w_neg * neg_counts
            for k in keys:
                out[k][i].append(_from_groups(k, wg, pg))
    return {k: np.stack([np.concatenate(parts) for parts in v]) for k, v in out.items()}


def _negatives_per_bin(rng: np.random.Generator, bins: list[Bins], b: int, n_neg: int) -> list[np.ndarray]:
    """``b`` resamples of the ``n_neg`` negatives, counted per bin of each ranking: (b, bins) each.

    One ranking: a multinomial straight over its bins with probabilities proportional to their
    negatives, which is exactly the law of the per-lead multinomial summed per bin — ~2 x positives
    + 1 binomial draws per resample, whatever N. Several rankings: their bins cut across each other
    and the comparison must be paired, so each resample draws ``n_neg`` lead indices, counts them per
    negative (the per-lead multinomial) and every ranking sums those counts into its own bins: O(N)
    per resample, one resample at a time, never a (resamples, N) matrix."""
    if len(bins) == 1:
        return [rng.multinomial(n_neg, bins[0].neg_share, size=b)]
    counts = [np.empty((b, bn.n)) for bn in bins]
    for j in range(b):
        per_lead = np.bincount(rng.integers(n_neg, size=n_neg), minlength=n_neg)
        for c, bn in zip(counts, bins):
            c[j] = np.bincount(bn.neg_bin, weights=per_lead, minlength=bn.n)
    return counts


def interval(samples: np.ndarray, value: float, level: float = 0.95) -> Estimate:
    defined = samples[~np.isnan(samples)]  # a ratio (lift) is 0/0 where both resampled to 0; ±inf stays
    if defined.size == 0:
        return Estimate(float(value), float("nan"), float("nan"))
    lo, hi = np.percentile(defined, [50 * (1 - level), 50 * (1 + level)])
    return Estimate(float(value), float(lo), float(hi))


def evaluate(y: np.ndarray, scores: np.ndarray, n_resamples: int = 1000, seed: int = 0,
             keys: tuple[str, ...] = METRIC_KEYS, weight: np.ndarray | None = None) -> dict[str, Estimate]:
    """Every metric of ``keys`` with its 95 % stratified-bootstrap CI (``weight``: sampling weights)."""
    y = np.asarray(y)
    if not both_classes(y):
        raise DataError("the test split has only one class; AUC, P@K and R@K are undefined",
                        hint="more data, or a split whose test part holds converted and unconverted leads")
    boots = bootstrap(y, [scores], keys, n_resamples, seed, weight)
    return {k: interval(boots[k][0], point(k, y, scores, weight)) for k in keys}

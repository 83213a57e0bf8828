"""Batch samplers: which leads go together into a training batch.

A sampler turns prompt lengths and training targets into a list of index
arrays, one per batch, for one epoch. The trainer takes any object with that
``batches`` method.

Every LLM row (asLLR Base, asLLR + L_CE, HPRO and its ablations) trains on
:class:`TierSampler` batches: the bucketed, oversampled draws below, topped up
so each batch holds a preference pair of every funnel tier the training set
has. Equal exposure (docs/llm-rankers.md): the paper's
lift row compares HPRO's *loss* with L_CE's, so both must see the same leads
in the same batches; with the tier sampler in HPRO alone, a batch of 4 at
pos_rate 0.1 grew to ~5.75 leads and ~19 % positives for HPRO only.

:class:`BucketedOversampler` (the draws without top-up):

* **oversamples positives** (about 1.4 % of leads) by repeating them until they
  are ``pos_rate`` of the epoch's draws — every negative is drawn once;
* **buckets by length**: the shuffled draws are cut into windows of
  ``bucket_batches`` batches, each window is sorted by prompt length and cut
  into batches, and the batch order is shuffled. Batches then hold prompts of
  similar length, so little compute goes to padding, while the windows keep
  the epoch random.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from llm_ranker.pairs import TIERS, PairSpec, build_pairs

POOL_LEADS = 1500  # train leads the tier sampler's pool of top-up pairs is built from


class BatchSampler(Protocol):
    def batches(self, lengths: np.ndarray, targets: dict[str, np.ndarray],
                rng: np.random.Generator) -> list[np.ndarray]: ...


def oversample(labels: np.ndarray, pos_rate: float, rng: np.random.Generator) -> np.ndarray:
    """Indices of one epoch: every lead once, positives repeated to reach ``pos_rate`` (never below once)."""
    pos, neg = np.flatnonzero(labels == 1), np.flatnonzero(labels != 1)
    if len(pos) == 0 or len(neg) == 0 or pos_rate <= len(pos) / len(labels):
        draws = np.arange(len(labels))
    else:
        n_pos = int(round(pos_rate / (1 - pos_rate) * len(neg)))
        extra = rng.choice(pos, n_pos - len(pos), replace=True) if n_pos > len(pos) else pos[:0]
        draws = np.concatenate([neg, pos, extra])
    return rng.permutation(draws)


def length_buckets(draws: np.ndarray, lengths: np.ndarray, batch_size: int, window: int,
                   rng: np.random.Generator) -> list[np.ndarray]:
    """Sort ``draws`` by length within windows of ``window`` batches, batch them, shuffle the batches."""
    span = batch_size * max(1, window)
    batches = []
    for start in range(0, len(draws), span):
        chunk = draws[start:start + span]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_batches(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Scoring batches: all leads sorted by length (deterministic), cut into batches."""
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), batch_size)]


def padding_share(batches: list[np.ndarray], lengths: np.ndarray) -> float:
    """Share of the tokens in padded batches that are padding."""
    real = sum(int(lengths[b].sum()) for b in batches)
    padded = sum(int(lengths[b].max()) * len(b) for b in batches if len(b))
    return 1 - real / padded if padded else 0.0


@dataclass(frozen=True)
class BucketedOversampler:
    batch_size: int
    pos_rate: float
    window: int = 50

    def batches(self, lengths: np.ndarray, targets: dict[str, np.ndarray],
                rng: np.random.Generator) -> list[np.ndarray]:
        return length_buckets(oversample(targets["label"], self.pos_rate, rng), lengths, self.batch_size,
                              self.window, rng)


# ---- the tier-aware sampler every LLM row trains on -----------------------------------------------
class TierSampler:
    """Oversampled, length-bucketed batches, each topped up to hold a pair of every available tier.

    The :class:`BucketedOversampler` draws are the base. For every batch lacking a
    pair of a tier of ``spec`` that exists in the training set (its pool, built
    on up to ``POOL_LEADS`` train leads, has one), the sampler adds one lead that
    forms such a pair with a batch member if the pool offers one, else a whole
    pair of that tier. An added lead takes the slot of a *spare* draw — a repeat
    of an oversampled positive that the epoch draws again elsewhere, never a
    witness of a tier already present — or is appended when there is none. So a
    batch holds a pair of every available tier (checked on every batch), and no
    draw is ever the only one of its lead: **every training lead is seen**. (Topping
    up by overwriting arbitrary members, as before, left 57 % of the train leads
    unseen at the paper's batch 4, 23 % at the quick profile's batch 8.)
    ``stats`` counts the batches topped up per tier, the leads added and the
    spare draws they replaced.

    Every LLM row uses it with :meth:`PairSpec.for_batches` (all funnel tiers, or
    label pairs without a funnel), so the batches depend on the data, the seed and
    the ``llm``/tier settings only — never on the loss (equal exposure)."""

    CANDIDATE_PAIRS = 32  # pool pairs searched for a lead that pairs with a batch member

    def __init__(self, batch_size: int, pos_rate: float, window: int, spec: PairSpec):
        self.batch_size, self.pos_rate, self.window, self.spec = batch_size, pos_rate, window, spec
        self.stats: dict[str, Any] = {}

    def pools(self, targets: dict[str, np.ndarray], rng: np.random.Generator) -> dict[int, np.ndarray]:
        """Tier id -> (k, 2) train-index pairs of that tier, from up to POOL_LEADS random leads."""
        n = len(targets["label"])
        sub = np.sort(rng.choice(n, min(n, POOL_LEADS), replace=False))
        pairs = build_pairs({k: np.asarray(v)[sub] for k, v in targets.items()}, self.spec)
        pools = {}
        for i in np.unique(pairs.tier):
            sel = np.flatnonzero(pairs.tier == i)
            sel = rng.choice(sel, min(len(sel), 50_000), replace=False)
            pools[int(i)] = np.stack([sub[pairs.winner[sel]], sub[pairs.loser[sel]]], 1)
        return pools

    def _pairs(self, leads: list[int] | np.ndarray, targets: dict[str, np.ndarray]):
        idx = np.asarray(leads, dtype=np.int64)
        return build_pairs({k: np.asarray(v)[idx] for k, v in targets.items()}, self.spec)

    def _witnesses(self, batch: list[int], targets: dict[str, np.ndarray]) -> tuple[set[int], set[int]]:
        """(tiers present, positions of one witness pair per present tier)."""
        pairs = self._pairs(batch, targets)
        witnesses = set()
        for t in set(pairs.tier.tolist()):
            j = int(np.flatnonzero(pairs.tier == t)[0])
            witnesses |= {int(pairs.winner[j]), int(pairs.loser[j])}
        return set(pairs.tier.tolist()), witnesses

    def _addition(self, batch: list[int], tier: int, pool: np.ndarray, targets: dict[str, np.ndarray],
                  rng: np.random.Generator) -> tuple[list[int], int | None]:
        """Leads to add for ``tier``: one that pairs with a batch member (and that member's position), else
        a pool pair of the tier."""
        rows = pool[rng.integers(len(pool), size=self.CANDIDATE_PAIRS)]  # with replacement: O(k), not O(pool)
        cand = rows.reshape(-1)
        pairs = self._pairs(np.concatenate([np.asarray(batch, np.int64), cand]), targets)
        n = len(batch)
        hit = np.flatnonzero((pairs.tier == tier) & ((pairs.winner < n) != (pairs.loser < n)))
        if len(hit):
            j = int(hit[rng.integers(len(hit))])
            member, new = sorted((int(pairs.winner[j]), int(pairs.loser[j])))
            return [int(cand[new - n])], member
        return [int(x) for x in rows[0]], None

    def batches(self, lengths: np.ndarray, targets: dict[str, np.ndarray],
                rng: np.random.Generator) -> list[np.ndarray]:
        draws = oversample(targets["label"], self.pos_rate, rng)
        base = length_buckets(draws, lengths, self.batch_size, self.window, rng)
        pools = self.pools(targets, rng)
        available = sorted(pools)
        spare = np.bincount(draws, minlength=len(targets["label"])) - 1  # draws of a lead beyond its first
        topped, added, replaced = dict.fromkeys(TIERS, 0), 0, 0
        out = []
        for base_batch in base:
            b = [int(x) for x in base_batch]
            present, protected = self._witnesses(b, targets)
            for t in available:
                if t in present:
                    continue
                new, member = self._addition(b, t, pools[t], targets, rng)
                if member is not None:
                    protected.add(member)
                for lead in new:
                    slot = next((int(p) for p in rng.permutation(len(b))
                                 if int(p) not in protected and spare[b[int(p)]] > 0), None)
                    if slot is None:
                        b.append(lead)
                        slot = len(b) - 1
                    else:
                        spare[b[slot]] -= 1
                        b[slot] = lead
                        replaced += 1
                    protected.add(slot)
                    added += 1
                topped[TIERS[t]] += 1
                present, witnesses = self._witnesses(b, targets)  # the new lead(s) may bring other tiers too
                protected |= witnesses
            assert set(available) <= present, f"batch lacks tier(s) {set(available) - present}"  # the guarantee
            out.append(np.asarray(b, dtype=base_batch.dtype))
        self.stats = {"tiers_available": [TIERS[t] for t in available],
                      "tiers_unavailable": [t for t in self.spec.tiers if TIERS.index(t) not in pools],
                      "batches": len(out), "batches_topped_up_per_tier": {k: v for k, v in topped.items() if v},
                      "top_up_leads_added": added, "spare_draws_replaced": replaced}
        return out

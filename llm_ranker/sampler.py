"""Batch samplers: which leads go together into a training batch.

A sampler turns prompt lengths and training targets into a list of index
arrays, one per batch, for one epoch. The trainer takes any object with that
``batches`` method, so HPRO can bring a tier-aware sampler (every batch holds
pairs of each funnel tier it can) and reuse :func:`length_buckets`.

The default, :class:`BucketedOversampler`:

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
from typing import Protocol

import numpy as np


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

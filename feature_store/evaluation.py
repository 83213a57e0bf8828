"""The evaluation design: which test leads are scored, and what each one weighs.

LLM rankers cost too much to score a whole test split of millions of leads, and
a base-rate subsample would leave a dozen positives. So the test split may be a
case-control sample (every positive up to a cap, random negatives), drawn from
the dataset, the two sizes and a seed alone: every method of a table is scored
on the same leads. The labels and weights (:class:`Truth`) go to the runner,
never to a method.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from feature_store.sampling import class_sample


@dataclass(frozen=True)
class EvalSample:
    """How the scored test leads were drawn from the test split: every lead, or a case-control sample.

    Case-control: every test positive up to ``positives``, and ``negatives`` random negatives. Each
    scored lead stands for ``1 / fraction`` leads of its class in the split, so weighted P@K / R@K
    estimate the whole split's values, while AUC needs no weights (they are uniform within a class)."""

    positives: int
    positives_in_split: int
    negatives: int
    negatives_in_split: int
    seed: int

    @property
    def case_control(self) -> bool:
        return (self.positives, self.negatives) != (self.positives_in_split, self.negatives_in_split)

    def weights(self, label: np.ndarray) -> np.ndarray:
        """Each scored lead's weight: the inverse of its class's sampling fraction (1.0 for the whole split)."""
        w_pos = self.positives_in_split / max(self.positives, 1)
        w_neg = self.negatives_in_split / max(self.negatives, 1)
        return np.where(np.asarray(label) == 1, w_pos, w_neg).astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        """What a result records (and what a rerun compares before reusing it)."""
        if not self.case_control:
            return {"design": "full"}
        return {"design": "case-control", "positives": self.positives, "positives_in_split": self.positives_in_split,
                "negatives": self.negatives, "negatives_in_split": self.negatives_in_split, "seed": self.seed}


@dataclass(frozen=True)
class Truth:
    """Test labels and sampling weights, held by the runner (never by a method) to compute metrics."""

    ids: np.ndarray
    label: np.ndarray
    weight: np.ndarray
    sample: EvalSample


def case_control(idx: np.ndarray, y: np.ndarray, max_pos: int | None, max_neg: int | None,
                 seed: int) -> tuple[np.ndarray, EvalSample]:
    """The rows of ``idx`` (labels ``y``) to score: at most ``max_pos`` positives and ``max_neg``
    negatives, each class drawn at random (null = all of the class), sorted."""
    n_pos, n_neg = int((y == 1).sum()), int((y != 1).sum())
    keep_pos = n_pos if max_pos is None else min(max_pos, n_pos)
    keep_neg = n_neg if max_neg is None else min(max_neg, n_neg)
    sample = EvalSample(keep_pos, n_pos, keep_neg, n_neg, seed)
    if not sample.case_control:
        return idx, sample
    return np.sort(idx[class_sample(y, keep_pos, keep_neg, np.random.default_rng([seed, 31337]))]), sample

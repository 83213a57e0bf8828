"""What an LLM row learned, measured from its scores and prompts: ``info["diagnostics"]`` of every LLM result.

A ranker can reach a respectable AUC without reading what its prompts say: by
following prompt length (leads with more calls have longer transcripts and
convert more), or by separating the funnel stages and nothing within them.
These figures show it beside the AUC:

* ``loss_by_tenth`` — the mean training loss in each tenth of the training
  batches (10 numbers; a flat curve learned nothing);
* ``valid_auc`` — AUC on a class-balanced sample of the validation split
  (:func:`balanced_positions`; nothing is tuned on it), and ``valid_leads``, that
  sample's size: a small learning-curve point's pro-rata validation cut may hold one
  positive, and an AUC on two leads is 0 or 1 whatever the model learned;
* ``spearman_prompt_tokens`` — rank correlation of the test scores with the
  prompt length in tokens (the prompt as the model read it, after trimming);
* ``prompt_tokens_auc`` — the AUC of prompt length alone as a score, on the
  same test leads: what following the length can earn;
* ``within_stage_auc`` — AUC among the test leads of each current funnel stage
  (None for a stage with one class; None where the data has no stage).

:func:`flags` turns them into the table footnote's warnings, by two rules:

* **follows prompt length**: |Spearman| ≥ 0.5 *and* the row's AUC exceeds that
  of prompt length alone (oriented like the correlation) by less than 0.02 —
  its scores track length strongly and rank no better than length does;
* **chance within stages**: the within-stage AUCs, averaged with weights equal
  to each stage's positive-negative pairs, fall below 0.55.

Pure functions of arrays: the method hands them the scores, prompt lengths,
labels and stages once the scores are fixed.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from feature_store.sampling import both_classes, class_sample

TENTHS = 10
LENGTH_RHO = 0.5  # |Spearman| with prompt tokens from which a row "follows prompt length"
LENGTH_MARGIN = 0.02  # ... unless its AUC is this much above prompt length's own AUC
WITHIN_STAGE_FLOOR = 0.55  # pair-weighted within-stage AUC below this: near chance inside the stages
MIN_VALID_LEADS = 40  # a validation AUC on fewer balanced leads (20 per class) is shown as too few to read


def loss_by_tenth(losses: Sequence[float]) -> list[float | None]:
    """The mean of each tenth of the per-batch training losses (None for an empty tenth: < 10 batches)."""
    parts = np.array_split(np.asarray(losses, dtype=np.float64), TENTHS)
    return [round(float(p.mean()), 5) if len(p) else None for p in parts]


def balanced_positions(y: np.ndarray, max_leads: int, seed: int) -> np.ndarray:
    """Positions of a class-balanced sample of at most ``max_leads`` leads: as many positives as negatives,
    each ``min(positives, negatives, max_leads // 2)`` (an AUC on it weighs both classes alike)."""
    y = np.asarray(y)
    k = min(int((y == 1).sum()), int((y != 1).sum()), max_leads // 2)
    return class_sample(y, k, k, np.random.default_rng([seed, 3141]))


def _auc(y: np.ndarray, score: np.ndarray) -> float | None:
    return round(float(roc_auc_score(y, score)), 4) if both_classes(y) else None


def spearman(scores: np.ndarray, other: np.ndarray) -> float | None:
    """Spearman's rank correlation (None where either side is constant)."""
    if np.ptp(scores) == 0 or np.ptp(other) == 0:
        return None
    return round(float(spearmanr(scores, other).statistic), 4)


def within_stage(y: np.ndarray, scores: np.ndarray, stage: np.ndarray,
                 names: Sequence[str]) -> tuple[dict[str, float | None], dict[str, int]]:
    """Per current stage (``stage``: depth codes indexing ``names``, -1 = missing): the AUC among its leads
    (None with one class) and its number of positive-negative pairs."""
    auc, pairs = {}, {}
    for s in np.unique(stage):
        name, m = str(names[s]) if 0 <= s < len(names) else "(missing)", stage == s
        auc[name], pairs[name] = _auc(y[m], scores[m]), int((y[m] == 1).sum() * (y[m] != 1).sum())
    return auc, pairs


def describe(scores: np.ndarray, y: np.ndarray, prompt_tokens: np.ndarray, stage: np.ndarray | None,
             stage_names: Sequence[str], losses: Sequence[float], valid_auc: float | None,
             valid_leads: int | None = None) -> dict[str, Any]:
    """Every diagnostic of one LLM result (the test leads' ``scores``, labels, prompt lengths and stages;
    ``valid_leads``: the size of the sample ``valid_auc`` was measured on)."""
    scores, y, tokens = np.asarray(scores, np.float64), np.asarray(y), np.asarray(prompt_tokens, np.float64)
    auc, pairs = within_stage(y, scores, np.asarray(stage), stage_names) if stage is not None else (None, None)
    return {"loss_by_tenth": loss_by_tenth(losses), "valid_auc": valid_auc, "valid_leads": valid_leads,
            "spearman_prompt_tokens": spearman(scores, tokens), "prompt_tokens_auc": _auc(y, tokens),
            "within_stage_auc": auc, "within_stage_pairs": pairs}


def pooled_within_stage_auc(diagnostics: dict[str, Any]) -> float | None:
    """The within-stage AUCs averaged with weights equal to each stage's positive-negative pairs."""
    within, pairs = diagnostics.get("within_stage_auc"), diagnostics.get("within_stage_pairs") or {}
    known = {s: a for s, a in (within or {}).items() if a is not None and pairs.get(s)}
    if not known:
        return None
    return sum(a * pairs[s] for s, a in known.items()) / sum(pairs[s] for s in known)


def flags(diagnostics: dict[str, Any], auc: float) -> list[str]:
    """The module's two rules on one result (its ``diagnostics`` and test AUC): a phrase per rule it trips."""
    out = []
    rho, length_auc = diagnostics.get("spearman_prompt_tokens"), diagnostics.get("prompt_tokens_auc")
    if rho is not None and length_auc is not None and abs(rho) >= LENGTH_RHO:
        oriented = length_auc if rho > 0 else 1 - length_auc
        if auc - oriented < LENGTH_MARGIN:
            out.append(f"its scores follow prompt length (Spearman {rho:+.2f}) and rank no better than prompt length "
                       f"alone (AUC {auc:.3f} vs {oriented:.3f})")
    pooled = pooled_within_stage_auc(diagnostics)
    if pooled is not None and pooled < WITHIN_STAGE_FLOOR:
        out.append(f"within the current stages it ranks near chance (pair-weighted within-stage AUC {pooled:.3f})")
    return out

"""Losses as named, weighted terms: ``L = Σ weight_i · term_i(output, targets)``.

asLLR uses ``α·L_BCE + λ2·L_CE`` (α = 2.0, λ2 = 0.5 in the paper); HPRO adds
``λ1·L_HPRO`` as one more :class:`LossTerm` without touching the trainer,
which logs every term under its name.

``targets`` is the batch's dict of per-lead training supervision (``label``;
HPRO adds funnel outcomes). It is built from train/valid splits only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from llm_ranker.model import RankerOutput

Targets = dict[str, torch.Tensor]


def bce_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of a scalar head's logits: the CTR loss the pointwise head is trained with."""
    return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


def qa_loss(lm_logits: torch.Tensor, labels: torch.Tensor, answer_ids: tuple[int, int]) -> torch.Tensor:
    """Cross-entropy of the answer token over the whole vocabulary (the LM's own next-token loss).

    The target is " Yes" for a lock and " No" otherwise, so the language model
    itself learns to answer the prompt's question — the QA loss of the paper."""
    yes, no = answer_ids
    target = torch.where(labels.bool(), yes, no).long()
    return F.cross_entropy(lm_logits.float(), target)


@dataclass(frozen=True)
class LossTerm:
    """One weighted term of the training loss."""

    name: str
    weight: float
    fn: Callable[[RankerOutput, Targets], torch.Tensor]


def pointwise_bce(out: RankerOutput, targets: Targets) -> torch.Tensor:
    return bce_loss(out.heads["pointwise"], targets["label"])


def answer_ce(out: RankerOutput, targets: Targets) -> torch.Tensor:
    return qa_loss(out.lm_logits, targets["label"], out.answer_ids)


def total_loss(terms: list[LossTerm], out: RankerOutput, targets: Targets) -> tuple[torch.Tensor, dict[str, float]]:
    """The weighted sum and each term's unweighted value (for logging)."""
    values = {t.name: t.fn(out, targets) for t in terms}
    total = sum(t.weight * values[t.name] for t in terms)
    return total, {name: float(v.detach()) for name, v in values.items()}

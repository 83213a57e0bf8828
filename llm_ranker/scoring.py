"""Scoring rules: how the ranker's outputs become one score per test lead.

Scoring collects, for every lead, each head's logit (by head name) and
``qa`` = log P(" Yes") − log P(" No") from the LM head. A rule maps that dict
of arrays (the whole test set, so a rule may normalise across leads) to scores.
Scores are logits, not probabilities: the order is the same and saturated
probabilities cannot create ties.

``llm.score`` picks the rule; the method records it in the result JSON.
``pairwise`` and ``blend`` need HPRO's pairwise head (``RULE_HEADS``), so a
method without it refuses them before any job runs.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from feature_store.errors import ConfigError

Rule = Callable[[dict[str, np.ndarray]], np.ndarray]
RULES: dict[str, Rule] = {}
DESCRIPTIONS: dict[str, str] = {}
RULE_HEADS = {"pointwise": ("pointwise",), "pairwise": ("pairwise",), "blend": ("pointwise", "pairwise")}


def register_rule(name: str, description: str):
    def deco(fn: Rule) -> Rule:
        RULES[name], DESCRIPTIONS[name] = fn, description
        return fn
    return deco


@register_rule("pointwise", "the pointwise head's logit (BCE-trained), the paper's rule")
def pointwise(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs["pointwise"]


@register_rule("qa", "logit of P(' Yes') / (P(' Yes') + P(' No')) from the LM head (TALLRec-style)")
def qa(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs["qa"]


@register_rule("pairwise", "the pairwise head's logit (HPRO's Bradley-Terry-trained head)")
def pairwise(outputs: dict[str, np.ndarray]) -> np.ndarray:
    return outputs["pairwise"]


BLEND_HEADS = ("pointwise", "pairwise", "qa")


@register_rule("blend", "sum of the z-scored pointwise, pairwise and qa logits (z over the scored leads)")
def blend(outputs: dict[str, np.ndarray]) -> np.ndarray:
    heads = [np.asarray(outputs[h], dtype=np.float64) for h in BLEND_HEADS if h in outputs]
    if len(heads) < 2:
        raise KeyError("pairwise")  # blend needs HPRO's heads; reported as a missing output
    return sum((x - x.mean()) / (x.std() or 1.0) for x in heads)


def apply_rule(name: str, outputs: dict[str, np.ndarray]) -> np.ndarray:
    if name not in RULES:
        raise ConfigError(f"unknown scoring rule llm.score={name}", hint=f"known: {sorted(RULES)}")
    try:
        return np.asarray(RULES[name](outputs), dtype=np.float64)
    except KeyError as e:
        raise ConfigError(f"scoring rule '{name}' needs output {e} that this model does not have",
                          hint=f"available outputs: {sorted(outputs)}") from None

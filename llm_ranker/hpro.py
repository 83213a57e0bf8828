"""HPRO: hierarchical preference ranking over the sales funnel (the second paper).

Three heads on one pooled state (:mod:`llm_ranker.model`): the LM head (QA loss),
``pointwise`` (BCE) and ``pairwise`` (preference pairs), trained with

    L = α·L_BCE + λ1·L_HPRO + λ2·L_CE,     L_HPRO = −mean log σ(s(x_w) − s(x_l) − m)

where ``s`` is the pairwise head's logit and ``m`` the pair's margin; the
pairs (w, l) and their tiers and margins come from :mod:`llm_ranker.pairs`
(global: lock over defeat, m = 1.0; key_action: test drive over none, m = 0.5;
soft_signal: long over short call, m = 0.1; label-only pairs without a funnel).

**Only the loss differs from asLLR w/o HPRO.** Every LLM row draws its batches
from the same tier-aware sampler (:class:`llm_ranker.sampler.TierSampler`, all
funnel tiers, seeded by the run seed), so for the same data, seed and ``llm``
settings asllr_ce and asllr_hpro train on the same leads in the same batches
(``train_exposure`` in each result records it); ``hpro.tiers`` and margins
choose which of each batch's pairs reach L_HPRO, never which leads are drawn.
The term counts the pairs per tier that reached it.

The three bugs of the published reference implementation are impossible here:
(a) tier labels are built from the outcome columns and reach the loss — a
funnel-mode loss refuses a batch without stage depths, unknown stage values
are an error, and ``fit`` fails if an available tier got no pair in the loss;
(b) the pairwise head is trained — ``fit`` fails if its weights did not move;
(c) the scoring rule is explicit (``llm.score``, checked against the heads) and recorded in the result.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from feature_store.split import Split
from leadrank_api import MethodContext, register
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm, Targets, answer_ce, pointwise_bce
from llm_ranker.methods import AsLLR
from llm_ranker.model import RankerOutput
from llm_ranker.pairs import TIERS, HPROParams, PairSpec, build_pairs


# ---- the loss --------------------------------------------------------------------------------------
def hpro_loss(s_w: torch.Tensor, s_l: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Margin-aware Bradley-Terry: ``−mean log σ(s_w − s_l − m)`` over the pairs (0 with no pairs)."""
    if s_w.numel() == 0:
        return s_w.sum() * 0.0  # keeps the graph; no pairs, no gradient
    return -F.logsigmoid(s_w.float() - s_l.float() - margin.float()).mean()


class HPROTerm:
    """The λ1·L_HPRO loss term: pairs of the batch from its targets, scores from the pairwise head.

    Counts the pairs per tier that reached the loss (``counts``) and batches seen."""

    def __init__(self, spec: PairSpec):
        self.spec = spec
        self.counts = dict.fromkeys(TIERS, 0)
        self.batches = 0

    def __call__(self, out: RankerOutput, targets: Targets) -> torch.Tensor:
        s = out.heads["pairwise"]
        pairs = build_pairs({k: v.detach().cpu().numpy() for k, v in targets.items()}, self.spec)
        self.batches += 1
        for k, v in pairs.counts().items():
            self.counts[k] += v
        idx = lambda a: torch.as_tensor(a, dtype=torch.long, device=s.device)  # noqa: E731
        return hpro_loss(s[idx(pairs.winner)], s[idx(pairs.loser)],
                         torch.as_tensor(pairs.margin, device=s.device))


# ---- the method ------------------------------------------------------------------------------------
@register(name="asllr_hpro", family="llm", tables=("table1", "table2", "table3"), order=15,
          baseline={"table2": "asllr_ce"}, in_paper=True, trains_on_outcomes=True,
          label={"table1": "asLLR + HPRO (Full)", "table2": "asLLR (w/ HPRO)", "table3": "asLLR + HPRO (Full)"},
          params={"llm": LLMParams, "hpro": HPROParams},
          description="asLLR + HPRO: triple head (LM, pointwise, pairwise), α·BCE + λ1·margin-aware "
                      "Bradley-Terry over funnel-tier pairs + λ2·QA CE; the same batches as asllr_ce")
class AsLLRHPRO(AsLLR):
    """asLLR + a pairwise head trained with λ1·L_HPRO; data, batches and the other terms are asLLR's."""

    head_names = ("pointwise", "pairwise")

    def __init__(self, ctx: MethodContext | None = None):
        super().__init__(ctx)
        self.spec: PairSpec | None = None  # the loss's pairs (its tiers); the batches' are self.batch_spec

    def loss_terms(self) -> list[LossTerm]:
        """L = α·L_BCE + λ1·L_HPRO + λ2·L_CE (the paper's formula; asllr_ce is the same without λ1·L_HPRO)."""
        self.term = HPROTerm(self.spec)
        return [LossTerm("bce", self.cfg.alpha, pointwise_bce), LossTerm("hpro", self.hpro.lambda1, self.term),
                LossTerm("ce", self.cfg.lambda_ce, answer_ce)]

    def fit(self, train: Split, valid: Split) -> "AsLLRHPRO":
        # same tier definitions as the batches, own tiers (none at a zero-shot point: nothing trains)
        self.spec = PairSpec.from_split(train, self.hpro) if len(train) else None
        super().fit(train, valid)
        self._check_training()
        return self

    def _check_training(self) -> None:
        """Bugs (a) and (b) of the reference implementation, refused at the end of every fit."""
        info = self.ranker.info
        if info.get("train_batches", 0) - info.get("resumed_from_batch", 0) <= 0:
            return  # resumed after the last batch: nothing was trained in this process
        if self.spec.mode == "label":  # label-only pairs: any batch with both classes forms them
            expected = ["label"] if 0 < info.get("train_positives", 0) < info.get("train_leads", 0) else []
        else:  # the funnel tiers this loss enables that the (shared) batches guarantee
            expected = [t for t in self.sampler.stats.get("tiers_available", []) if t in self.spec.tiers]
        starved = [t for t in expected if self.term.counts[t] == 0]
        if starved:
            raise RuntimeError(f"HPRO: tier(s) {starved} exist in the training set but no pair reached the loss")
        if sum(self.term.counts.values()) and not info.get("head_update_norms", {}).get("pairwise", 0.0) > 0:
            raise RuntimeError("HPRO: the pairwise head's weights did not change in training (frozen head?)")

    def run_info(self) -> dict[str, Any]:
        if self.zero_shot_fit:
            return super().run_info()
        return {**super().run_info(), "hpro": {**self.hpro.to_dict(), **self.spec.describe(),
                                               "pair_counts": {k: v for k, v in self.term.counts.items() if v}}}

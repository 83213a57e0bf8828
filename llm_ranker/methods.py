"""The registered asLLR methods, and the base class HPRO extends.

:class:`AsLLR` holds everything an LLM ranker method does; a subclass only
chooses its parts:

* ``head_names`` — the scalar heads on the pooled state (asLLR: ``pointwise``);
* :meth:`loss_terms` — named, weighted :class:`~llm_ranker.losses.LossTerm` s;
* :meth:`make_sampler` — the batch sampler (default: positives oversampled,
  length-bucketed);
* :meth:`training_targets` — per-lead supervision handed to the loss terms
  (default: ``label``; HPRO adds funnel outcomes);
* the scoring rule comes from ``llm.score`` (:mod:`llm_ranker.scoring`).

Methods do not require text: on data without a text column the prompt is the
table part only, and ``run_info`` says ``inputs: table-only``.

HPRO plugs in without touching the pipeline, e.g.::

    @register_rule("pairwise", "the pairwise head's logit")     # llm_ranker.scoring
    def pairwise(outputs): return outputs["pairwise"]

    @register(name="asllr_hpro", family="llm", tables=("table1", "table2"), description="...")
    class AsLLRHPRO(AsLLR):
        head_names = ("pointwise", "pairwise")
        def loss_terms(self):
            return [LossTerm("bce", self.cfg.alpha, pointwise_bce), LossTerm("hpro", lambda1, hpro_term),
                    LossTerm("ce", self.cfg.lambda_ce, answer_ce)]
        def make_sampler(self): return TierSampler(...)      # may reuse sampler.length_buckets
        def training_targets(self, train):                     # outcomes: train/valid only
            return super().training_targets(train) | {"final_stage": ..., "call_seconds": ...}

``hpro_term(out, targets)`` reads ``out.heads["pairwise"]`` and the batch's
``targets``; every target array is sliced per batch by the trainer.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from benchmark.registry import Method, MethodContext, register
from feature_store.errors import ConfigError
from feature_store.store import Split
from llm_ranker.config import LLMConfig
from llm_ranker.losses import LossTerm, answer_ce, pointwise_bce
from llm_ranker.ranker import LLMRanker, subsample
from llm_ranker.sampler import BatchSampler, BucketedOversampler
from llm_ranker.scoring import DESCRIPTIONS, RULES, apply_rule


class AsLLR(Method):
    """A LoRA-tuned LLM that reads the lead's prompt and scores it."""

    # Same seed, same machine: identical up to float reordering in threaded CPU kernels.
    determinism_tol: ClassVar[float] = 1e-4
    head_names: ClassVar[tuple[str, ...]] = ("pointwise",)

    def __init__(self, ctx: MethodContext | None = None):
        super().__init__(ctx)
        self.cfg = LLMConfig.from_config(self.ctx.config)
        if self.cfg.score not in RULES:
            raise ConfigError(f"unknown scoring rule llm.score={self.cfg.score}", hint=f"known: {sorted(RULES)}")

    # ---- the parts a subclass chooses ---------------------------------------------------------------
    def loss_terms(self) -> list[LossTerm]:
        raise NotImplementedError

    def make_sampler(self) -> BatchSampler:
        return BucketedOversampler(self.cfg.batch_size, self.cfg.pos_rate, self.cfg.bucket_batches)

    def training_targets(self, train: Split) -> dict[str, np.ndarray]:
        return {"label": train.y.astype(np.int64)}

    # ---- the method protocol ----------------------------------------------------------------------
    def fit(self, train: Split, valid: Split) -> "AsLLR":
        cfg, seed = self.cfg, self.ctx.seed
        self.n_train_split = len(train)
        part = subsample(train, cfg.train_max_leads, seed)
        self.ranker = LLMRanker(cfg, self.ctx.cache_dir, seed, self.loss_terms(), self.make_sampler(),
                                self.head_names, self.ctx.progress)
        self.ranker.fit(part, self.training_targets(part))
        self.valid_auc = self._valid_auc(valid)
        return self

    def score(self, test: Split) -> np.ndarray:
        return apply_rule(self.cfg.score, self.ranker.predict(test))

    def embed(self, split: Split) -> np.ndarray:
        """The pooled hidden state of every lead (the ``asllr`` h_text provider's raw vectors)."""
        return self.ranker.predict(split)["pooled"]

    def run_info(self) -> dict[str, Any]:
        return {"scoring_rule": self.cfg.score, "scoring_rule_description": DESCRIPTIONS[self.cfg.score],
                "train_split_leads": self.n_train_split, "valid_auc": self.valid_auc,
                "llm": self.cfg.to_dict(), **self.ranker.info}

    def _valid_auc(self, valid: Split) -> float | None:
        """AUC on a subsample of the validation split (a sanity figure; nothing is tuned on it)."""
        if not self.cfg.valid_max_leads or len(valid) == 0:
            return None
        from sklearn.metrics import roc_auc_score

        part = subsample(valid, self.cfg.valid_max_leads, self.ctx.seed)
        y = part.y
        if y.min() == y.max():
            return None
        return round(float(roc_auc_score(y, self.score(part))), 4)


@register(name="asllr_base", family="llm", tables=("table1",),
          description="asLLR (Base): LoRA LLM reading the lead prompt, pointwise head, BCE only")
class AsLLRBase(AsLLR):
    def loss_terms(self) -> list[LossTerm]:
        return [LossTerm("bce", self.cfg.alpha, pointwise_bce)]


@register(name="asllr_ce", family="llm", tables=("table1", "table2"),
          description="asLLR + L_CE: BCE on the pointwise head + QA cross-entropy of ' Yes'/' No' via the LM head")
class AsLLRCE(AsLLR):
    def loss_terms(self) -> list[LossTerm]:
        return [LossTerm("bce", self.cfg.alpha, pointwise_bce), LossTerm("ce", self.cfg.lambda_ce, answer_ce)]

"""The asLLR method, and the base class HPRO extends.

:class:`AsLLR` holds everything an LLM ranker method does; a subclass only
chooses its parts:

* ``head_names`` — the scalar heads on the pooled state (asLLR: ``pointwise``);
* :meth:`loss_terms` — named, weighted :class:`~llm_ranker.losses.LossTerm` s;
* :meth:`training_targets` — per-lead supervision handed to the loss terms
  (``label`` and the funnel targets the batches are composed from);
* the scoring rule comes from ``llm.score`` (:mod:`llm_ranker.scoring`).

**Equal exposure.** The batches are not a part a subclass chooses: every LLM
row draws them from the tier-aware sampler (:class:`~llm_ranker.sampler.TierSampler`
over :meth:`PairSpec.for_batches <llm_ranker.pairs.PairSpec.for_batches>`: the
funnel outcomes of train leads, ``train.outcomes``, which every method may read
on train; label pairs where the data has no outcome funnel). So asLLR w/o HPRO
and w/ HPRO see the same leads in the same batches for the same seed and
settings, and the paper's lift row measures the loss alone. To read the tier
definitions (``hpro.key_stage``, soft-call thresholds) every LLM row declares
the ``hpro`` section; asLLR's loss uses none of its pairs. ``run_info`` records
``train_exposure`` (distinct leads and positives seen, optimizer steps).

**Diagnostics.** Every LLM result records what the row learned
(:mod:`llm_ranker.diagnostics`): the training loss by tenth, the AUC on a
class-balanced validation sample (``llm.valid_max_leads``), and, on the test
leads once scored, the correlation of the scores with prompt length and the
AUC within each current funnel stage.

**Zero-shot.** Fitted on no lead (a learning curve's n = 0 point), a row keeps
the backbone untrained and scores by the QA rule whatever ``llm.score`` says
(:meth:`LLMRanker.zero_shot <llm_ranker.ranker.LLMRanker.zero_shot>`): the heads
would be random, the LM head's answer is what the backbone already knows.

The paper's rows ``asllr_base`` (BCE only) and ``asllr_ce`` (+ the QA loss)
are variants of ``asllr`` declared in ``llm_ranker/variants.yaml``; HPRO
(:mod:`llm_ranker.hpro`) is a subclass with a second head and a pair loss.

Methods do not require text: on data without a text column the prompt is the
table part only (``inputs()`` then says ``text: none``; ``run_info``'s
``prompt_parts`` says ``table-only``).

``hpro_term(out, targets)`` reads ``out.heads["pairwise"]`` and the batch's
``targets``; every target array is sliced per batch by the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np

from feature_store.errors import ConfigError
from feature_store.sampling import both_classes
from feature_store.schema import Inputs, Schema
from feature_store.split import Split
from leadrank_api import Method, MethodContext, Params, Settings, register
from llm_ranker import diagnostics
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm, answer_ce, pointwise_bce
from llm_ranker.pairs import HPROParams, PairSpec
from llm_ranker.ranker import LLMRanker, subsample
from llm_ranker.sampler import TierSampler
from llm_ranker.scoring import DESCRIPTIONS, RULE_HEADS, RULES, apply_rule


class AsLLROptions(Params):
    """What makes one asLLR row what it is (fixed by its variant)."""

    qa_loss: bool = True
    """Add λ2·L_CE, the QA cross-entropy of ' Yes'/' No' through the LM head (asllr_ce), to α·L_BCE."""


@register(name="asllr", family="llm", params={"llm": LLMParams, "hpro": HPROParams}, in_paper=True,
          zero_shot=True,
          description="asLLR: LoRA LLM reading the lead prompt, pointwise head (base of asllr_base / asllr_ce)")
class AsLLR(Method):
    """A LoRA-tuned LLM that reads the lead's prompt and scores it."""

    # Same seed, same machine: identical up to float reordering in threaded CPU kernels.
    determinism_tol: ClassVar[float] = 1e-4
    head_names: ClassVar[tuple[str, ...]] = ("pointwise",)
    Options = AsLLROptions
    options = AsLLROptions()

    def __init__(self, ctx: MethodContext | None = None):
        super().__init__(ctx)
        self.cfg: LLMParams = self.section("llm")
        self.hpro: HPROParams = self.section("hpro")  # asLLR reads only its tier definitions (the batches)
        self.check_settings(self.ctx.settings)
        self.batch_spec: PairSpec | None = None
        self.backbone_dir: Path | None = None  # a backbone build shared with other models (h_text folds)

    @classmethod
    def train_cap(cls, settings: Mapping[str, Settings]) -> int | None:
        return settings["llm"].train_max_leads

    @classmethod
    def check_settings(cls, settings: Mapping[str, Settings]) -> None:
        """Refuse settings this method cannot run with, before any job starts."""
        cfg = settings["llm"]
        if not cfg.backbone:
            raise ConfigError("llm.backbone is not set (the paper profile names no model: weights are never "
                              "downloaded)", hint="pass a local causal LM directory, e.g. "
                                                  "--set llm.backbone=/models/Qwen2.5-1.5B")
        if cfg.score not in RULES:
            raise ConfigError(f"unknown scoring rule llm.score={cfg.score}", hint=f"known: {sorted(RULES)}")
        missing = [h for h in RULE_HEADS.get(cfg.score, ()) if h not in cls.head_names]
        if missing:
            raise ConfigError(f"'{cls.name}' cannot score with llm.score={cfg.score}: it has no {missing[0]} head",
                              hint=f"its heads: {', '.join(cls.head_names)} (and the LM head, rule 'qa')")

    # ---- the parts a subclass chooses ---------------------------------------------------------------
    def loss_terms(self) -> list[LossTerm]:
        """L = α·L_BCE (asllr_base) + λ2·L_CE (asllr_ce): the asLLR paper's loss."""
        terms = [LossTerm("bce", self.cfg.alpha, pointwise_bce)]
        return terms + [LossTerm("ce", self.cfg.lambda_ce, answer_ce)] if self.options.qa_loss else terms

    def training_targets(self, train: Split) -> dict[str, np.ndarray]:
        return {"label": train.y.astype(np.int64)} | self.batch_spec.targets(train)

    def share_backbone(self, path: Path | None) -> "AsLLR":
        """Train on this backbone build (e.g. a tiny backbone whose tokenizer saw the whole train split)
        instead of one built from this fit's own training prompts."""
        self.backbone_dir = path
        return self

    # ---- the method protocol ----------------------------------------------------------------------
    def fit(self, train: Split, valid: Split) -> "AsLLR":
        cfg, seed = self.cfg, self.ctx.seed
        self.n_train_split = len(train)
        if not len(train):  # a learning curve's n = 0 point: the backbone's own answer, nothing trained
            self.ranker = LLMRanker(cfg, self.ctx.cache_dir, seed, [], None, self.head_names, self.ctx.progress,
                                    backbone_dir=self.backbone_dir).zero_shot(train.schema)
            self.valid_auc = self.valid_leads = None
            return self
        # equal exposure: the same tier-aware batches for every LLM row, whatever its loss
        self.batch_spec = PairSpec.for_batches(train, self.hpro)
        self.sampler = TierSampler(cfg.batch_size, cfg.pos_rate, cfg.bucket_batches, self.batch_spec)
        part = subsample(train, cfg.train_max_leads, seed)
        self.ranker = LLMRanker(cfg, self.ctx.cache_dir, seed, self.loss_terms(), self.sampler,
                                self.head_names, self.ctx.progress, backbone_dir=self.backbone_dir)
        self.ranker.fit(part, self.training_targets(part))
        self.valid_auc, self.valid_leads = self._valid_auc(valid)
        return self

    @property
    def zero_shot_fit(self) -> bool:
        """Fitted on no lead: the heads are untrained, so the score is the LM head's QA rule."""
        return self.n_train_split == 0

    @property
    def scoring_rule(self) -> str:
        return "qa" if self.zero_shot_fit else self.cfg.score

    def score(self, test: Split) -> np.ndarray:
        return apply_rule(self.scoring_rule, self.ranker.predict(test))

    def diagnostics(self, test: Split, scores: np.ndarray, label: np.ndarray) -> dict[str, Any]:
        tokens = np.array([len(x) for x in self.ranker.token_ids(test)])
        return diagnostics.describe(scores, label, tokens, test.stage, test.schema.stage_order,
                                    self.ranker.train_losses, self.valid_auc, self.valid_leads)

    def close(self) -> None:
        self.ranker.close()

    def inputs(self, schema: Schema) -> Inputs:
        """The prompt: every tabular column, the current stage and the text (where the data has them)."""
        return schema.view("prompt")

    def embed(self, split: Split) -> np.ndarray:
        """The pooled hidden state of every lead (the ``asllr`` h_text provider's raw vectors)."""
        return self.ranker.predict(split)["pooled"]

    def run_info(self) -> dict[str, Any]:
        rule = self.scoring_rule
        info = {"scoring_rule": rule, "scoring_rule_description": DESCRIPTIONS[rule],
                "train_split_leads": self.n_train_split, "llm": self.cfg.to_dict()}
        if self.zero_shot_fit:
            return info | {"zero_shot": "no training lead: the backbone's QA rule, whatever llm.score says"} \
                | self.ranker.info
        spec = self.batch_spec
        batches = {"sampler": "tier-aware (TierSampler), the same for every LLM row",
                   "pairs": "funnel tiers" if spec.mode == "funnel" else "label pairs (no outcome funnel)",
                   **spec.definitions(), **self.sampler.stats}
        return info | {"batches": batches} | self.ranker.info

    def _valid_auc(self, valid: Split) -> tuple[float | None, int | None]:
        """AUC on a class-balanced sample of the validation split (a diagnostic; nothing is tuned on it) and
        the sample's size."""
        if not self.cfg.valid_max_leads or len(valid) == 0:
            return None, None
        from sklearn.metrics import roc_auc_score

        part = valid.take(diagnostics.balanced_positions(valid.y, self.cfg.valid_max_leads, self.ctx.seed))
        if len(part) == 0:  # one class only
            return None, 0
        return round(float(roc_auc_score(part.y, self.score(part))), 4), len(part)

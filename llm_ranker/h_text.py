"""The ``asllr`` h_text provider: the fine-tuned ranker's pooled hidden state.

A CTR model trained on ``h_text`` must not see train-lead vectors from a model
that was trained on those leads' labels: such vectors already encode the label
and the CTR model would learn to trust them more than they deserve on test.
So train leads are embedded by **K-fold cross-fitting** (default K = 2): the
train split is cut into K label-stratified folds, a ranker is trained on the
other folds and embeds this fold. Valid and test leads are embedded by a ranker
trained on the whole train split (they were never trained on).
``h_text.crossfit: false`` gives the paper-style *leaky* variant (one model for
every split), and the table footnote says so.

The ranker is ``asllr_ce`` with the profile's ``llm.*`` settings (including
``llm.train_max_leads``, applied to each fold model); the store then reduces
the vectors with a train-only PCA and caches them. It declares the ``llm`` and
``hpro`` sections it reads (``reads``), so the +h_text rows rerun when they change.

**One backbone build for all of them.** Train vectors (fold models) and
valid/test vectors (the full model) feed one CTR model, so they must live in
one space: every model of a provider call loads the same backbone build,
made once from the whole train split's prompts (:func:`shared_backbone`).
With the ``tiny`` backbone each model used to train its own BPE tokenizer on
its own fold, so the same text got different token ids — and different
random-init embeddings — in train and in test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from feature_store.embeddings import EmbeddingProvider, register_provider
from feature_store.sampling import stratified_folds
from feature_store.split import Split
from leadrank_api import MethodContext
from llm_ranker.config import LLMParams
from llm_ranker.methods import AsLLR
from llm_ranker.pairs import HPROParams
from llm_ranker.ranker import shared_backbone


def crossfit_embed(split: Split, fit: Callable[[Split], Any], embed: Callable[[Any, Split], np.ndarray],
                   folds: int, seed: int) -> np.ndarray:
    """Vectors for every lead of ``split``, each from a model fit without that lead."""
    fold = stratified_folds(split.y, folds, seed)
    out: np.ndarray | None = None
    for k in range(folds):
        model = fit(split.take(np.flatnonzero(fold != k)))
        rows = np.flatnonzero(fold == k)
        vecs = embed(model, split.take(rows))
        if out is None:
            out = np.zeros((len(split), vecs.shape[1]), dtype=np.float32)
        out[rows] = vecs
    return out


@register_provider("asllr")
class AsLLRProvider(EmbeddingProvider):
    description = "asLLR pooled state, K-fold cross-fitted"
    # the ranker's settings, and the tier definitions the shared batches of every LLM row are composed
    # from (llm_ranker.methods)
    reads = {"llm": LLMParams, "hpro": HPROParams}

    def __init__(self, config, seed: int = 0):
        super().__init__(config, seed)
        self.crossfit, self.folds = self.h_text.crossfit, self.h_text.folds
        self.llm = self.sections["llm"].model_copy(update={"valid_max_leads": 0})
        self.hpro = self.sections["hpro"]
        self.backbone: Path | None = None  # the build every model of one embed() call loads
        self.description = (f"asLLR pooled state, {self.folds}-fold cross-fitted on train" if self.crossfit else
                            "asLLR pooled state, LEAKY (paper-style): train leads embedded by a model trained "
                            "on their labels")

    def settings(self) -> dict[str, Any]:
        tiers = {k: v for k, v in self.hpro.to_dict().items() if k in ("key_stage", "soft_quantiles", "soft_seconds")}
        # part of the vector cache's key: vectors from per-fold tokenizers are never reused
        return {"llm": self.llm.to_dict(), "tier_definitions": tiers, "backbone_build": "shared, whole train split",
                "crossfit": self.crossfit, "folds": self.folds, "seed": self.seed}

    def _cache(self) -> Path:
        # the same cache the runner gives methods (benchmark.profile.Profile.cache_dir)
        return Path(self.config.get("data_dir", "data")) / "cache"

    def _fit(self, train: Split):
        ctx = MethodContext(seed=self.seed, settings={"llm": self.llm, "hpro": self.hpro},
                            cache_dir=str(self._cache()), progress=bool(self.progress))
        return AsLLR(ctx).share_backbone(self.backbone).fit(train, train.take(np.arange(0)))

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.backbone = shared_backbone(self.llm, self._cache(), train)  # before any model: all share it
        full = self._fit(train)
        train_vecs = (crossfit_embed(train, self._fit, _embed_and_close, self.folds, self.seed)
                      if self.crossfit else full.embed(train))
        valid_vecs, test_vecs = full.embed(valid), full.embed(test)
        full.close()
        return train_vecs, valid_vecs, test_vecs


def _embed_and_close(model: AsLLR, split: Split) -> np.ndarray:
    """A fold model's vectors; its kept weights go once they are computed (a kill before keeps them)."""
    vecs = model.embed(split)
    model.close()
    return vecs

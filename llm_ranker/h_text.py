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
the vectors with a train-only PCA and caches them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np

from benchmark.registry import MethodContext
from feature_store.embeddings import EmbeddingProvider, register_provider
from feature_store.store import Split
from llm_ranker.config import LLMConfig


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """A fold number per lead; positives and negatives spread evenly over the folds."""
    rng = np.random.default_rng([seed, 4242])
    fold = np.empty(len(labels), dtype=np.int64)
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        fold[idx] = np.arange(len(idx)) % k
    return fold


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

    def __init__(self, config, seed: int = 0):
        super().__init__(config, seed)
        h = config.get("h_text", {}) or {}
        self.crossfit, self.folds = bool(h.get("crossfit", True)), int(h.get("folds", 2))
        self.llm = LLMConfig.from_config(config).replace(valid_max_leads=0)
        self.description = (f"asLLR pooled state, {self.folds}-fold cross-fitted on train" if self.crossfit else
                            "asLLR pooled state, LEAKY (paper-style): train leads embedded by a model trained "
                            "on their labels")

    def settings(self) -> dict[str, Any]:
        return {"llm": self.llm.to_dict(), "crossfit": self.crossfit, "folds": self.folds, "seed": self.seed}

    def _fit(self, train: Split):
        from llm_ranker.methods import AsLLRCE

        # the same cache the runner gives methods (benchmark.runner.cache_dir)
        cache = Path(self.config.get("data_dir", "data")) / "cache"
        config = {**self.config, "llm": self.llm.to_dict()}
        ctx = MethodContext(seed=self.seed, config=config, cache_dir=str(cache), progress=bool(self.progress))
        return AsLLRCE(ctx).fit(train, train.take(np.arange(0)))

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        full = self._fit(train)
        train_vecs = (crossfit_embed(train, self._fit, lambda m, s: m.embed(s), self.folds, self.seed)
                      if self.crossfit else full.embed(train))
        return train_vecs, full.embed(valid), full.embed(test)

"""LightGBM: the model most lead-scoring teams would try first.

Not in either paper, but a benchmark of deep CTR models without a gradient-boosted
tree baseline flatters the deep models. It reads the same table features as the
CTR rows (categorical codes handled natively by LightGBM, numerics as scaled by
the store) and stops early on the validation slice's AUC.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import lightgbm as lgb
import numpy as np
from tqdm.auto import tqdm

from benchmark.registry import Method, MethodContext, register
from feature_store.store import Split


@dataclass(frozen=True)
class GBDTConfig:
    """The ``lightgbm:`` section of a profile.

    Defaults suit rare positives (~1.5 %): shallow trees, large leaves, row and feature
    subsampling, smoothed categorical splits; chosen by validation AUC on the quick worlds."""

    learning_rate: float = 0.02
    num_leaves: int = 7
    min_child_samples: int = 200
    feature_fraction: float = 0.8
    bagging_fraction: float = 0.8
    lambda_l2: float = 10.0
    cat_smooth: float = 50.0
    min_data_per_group: int = 200
    max_rounds: int = 2000
    early_stopping_rounds: int = 200  # the validation slice holds few positives: its AUC is noisy
    threads: int = 1  # OpenMP threads; busy-waiting threads collapse on a shared 2-core box

    @classmethod
    def from_context(cls, ctx: MethodContext) -> "GBDTConfig":
        return cls(**{f.name: type(f.default)(ctx.get(f"lightgbm.{f.name}", f.default)) for f in fields(cls)})


@register(name="lightgbm", family="classical", tables=("table1", "table2"), in_paper=False,
          description="LightGBM: native categoricals + scaled numerics, early stopping on valid AUC")
class LightGBM(Method):
    @staticmethod
    def _features(split: Split) -> np.ndarray:
        """Categorical codes first (the store's train vocabulary, 0 = unseen), then the numerics."""
        return np.hstack([split.cat.astype(np.float64), split.num.astype(np.float64)])

    def fit(self, train: Split, valid: Split) -> "LightGBM":
        self.config = cfg = GBDTConfig.from_context(self.ctx)
        params = {"objective": "binary", "metric": "auc", "learning_rate": cfg.learning_rate,
                  "num_leaves": cfg.num_leaves, "min_child_samples": cfg.min_child_samples,
                  "feature_fraction": cfg.feature_fraction, "bagging_fraction": cfg.bagging_fraction,
                  "bagging_freq": 1, "lambda_l2": cfg.lambda_l2, "cat_smooth": cfg.cat_smooth,
                  "min_data_per_group": cfg.min_data_per_group, "num_threads": cfg.threads,
                  "seed": self.ctx.seed, "deterministic": True, "force_col_wise": True, "verbose": -1}
        train_set = lgb.Dataset(self._features(train), train.y, categorical_feature=list(range(train.cat.shape[1])),
                                params={"verbose": -1})
        # AUC is undefined on one class: then boost every round without early stopping
        self.early_stopping = len(np.unique(valid.y)) == 2
        valid_sets = [train_set.create_valid(self._features(valid), valid.y)] if self.early_stopping else []
        with tqdm(total=cfg.max_rounds, desc=self.name, unit="round", disable=not self.ctx.progress,
                  leave=False) as bar:
            callbacks = [lambda env: bar.update(1)]
            if self.early_stopping:
                callbacks.append(lgb.early_stopping(cfg.early_stopping_rounds, verbose=False))
            self.booster = lgb.train(params, train_set, num_boost_round=cfg.max_rounds, valid_sets=valid_sets,
                                     callbacks=callbacks)
        return self

    def score(self, test: Split) -> np.ndarray:
        return self.booster.predict(self._features(test), num_iteration=self.booster.best_iteration or None)

    def run_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"lightgbm": asdict(self.config), "trees": self.booster.current_iteration(),
                                "early_stopping": self.early_stopping}
        if self.early_stopping:
            info |= {"best_round": self.booster.best_iteration,
                     "valid_auc": float(self.booster.best_score["valid_0"]["auc"])}
        return info

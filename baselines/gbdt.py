"""LightGBM: the model most lead-scoring teams would try first.

Not in either paper, but a benchmark of deep CTR models without a gradient-boosted
tree baseline flatters the deep models. It reads the same table part of the
input view as the CTR rows — the categorical codes and the current stage
(``Split.codes``, handled natively by LightGBM as categoricals), the numerics as
scaled by the store — and stops early on the validation slice's AUC.
"""

from __future__ import annotations

from typing import Any

import lightgbm as lgb
import numpy as np
from tqdm.auto import tqdm

from feature_store.sampling import both_classes
from feature_store.split import Split
from leadrank_api import Method, Params, register


class LightGBMParams(Params):
    """The ``lightgbm:`` section of a profile.

    Defaults suit rare positives (~1.5 %): shallow trees, large leaves, row and feature
    subsampling, smoothed categorical splits; chosen by validation AUC on the quick worlds."""

    learning_rate: float = 0.02
    """Shrinkage per round."""
    num_leaves: int = 7
    """Leaves per tree (shallow: positives are rare)."""
    min_child_samples: int = 200
    """Fewest leads in a leaf."""
    feature_fraction: float = 0.8
    """Share of features tried per tree."""
    bagging_fraction: float = 0.8
    """Share of leads drawn per round."""
    lambda_l2: float = 10.0
    """L2 penalty on leaf values."""
    cat_smooth: float = 50.0
    """Smoothing of categorical split statistics."""
    min_data_per_group: int = 200
    """Fewest leads per categorical group."""
    max_rounds: int = 2000
    """Boosting rounds at most."""
    early_stopping_rounds: int = 200
    """Rounds without a better validation AUC before stopping (few validation positives: a noisy AUC)."""
    threads: int = 1
    """OpenMP threads; busy-waiting threads collapse on a shared 2-core box."""


@register(name="lightgbm", family="classical", tables=("table1", "table2", "table3"), requires=("tabular",),
          label="LightGBM", params={"lightgbm": LightGBMParams},
          description="LightGBM: native categoricals + scaled numerics, early stopping on valid AUC")
class LightGBM(Method):
    @staticmethod
    def _features(split: Split) -> np.ndarray:
        """Categorical codes and the stage first (``Split.codes``), then the numerics, as one float32 matrix.

        LightGBM reads one dense matrix of float32 or float64, so this is a copy of the split's arrays
        (freed once the Dataset is binned). float32 holds the numerics (float32 already) and every code
        exactly (a code is below the number of train leads, so below 2**24 up to 16M train leads), and
        LightGBM widens each value to double: the trees are those of a float64 matrix, at half the bytes."""
        codes, num = split.codes(), split.num
        x = np.empty((len(split), codes.shape[1] + num.shape[1]), dtype=np.float32)
        x[:, :codes.shape[1]], x[:, codes.shape[1]:] = codes, num
        return x

    def fit(self, train: Split, valid: Split) -> "LightGBM":
        self.config = cfg = self.section("lightgbm")
        params = {"objective": "binary", "metric": "auc", "learning_rate": cfg.learning_rate,
                  "num_leaves": cfg.num_leaves, "min_child_samples": cfg.min_child_samples,
                  "feature_fraction": cfg.feature_fraction, "bagging_fraction": cfg.bagging_fraction,
                  "bagging_freq": 1, "lambda_l2": cfg.lambda_l2, "cat_smooth": cfg.cat_smooth,
                  "min_data_per_group": cfg.min_data_per_group, "num_threads": cfg.threads,
                  "seed": self.ctx.seed, "deterministic": True, "force_col_wise": True, "verbose": -1}
        n_codes = len(train.schema.table_categorical)
        train_set = lgb.Dataset(self._features(train), train.y, categorical_feature=list(range(n_codes)),
                                params={"verbose": -1})
        # AUC is undefined on one class: then boost every round without early stopping
        self.early_stopping = both_classes(valid.y)
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
        info: dict[str, Any] = {"lightgbm": self.config.to_dict(), "trees": self.booster.current_iteration(),
                                "early_stopping": self.early_stopping}
        if self.early_stopping:
            info |= {"best_round": self.booster.best_iteration,
                     "valid_auc": float(self.booster.best_score["valid_0"]["auc"])}
        return info

"""Any scikit-learn classifier as a method: subclass :class:`SklearnClassifier`, return the estimator.

The design matrix is the one most teams would build, on the table part of the
dataset's input view (``Method.inputs``' default): categoricals and the current
stage (``Split.codes``) one-hot encoded on train (rare values below
``min_frequency`` pooled, unseen ones ignored) next to the store's scaled
numerics, as a sparse matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import OneHotEncoder

from feature_store.split import Split
from leadrank_api import Method


class SklearnClassifier(Method):
    """Fit ``make_estimator()`` on the design of train; score = its decision function (or P(lock))."""

    min_frequency = 5  # one-hot: categories seen fewer times on train share one column
    requires = ("tabular",)  # a table model: n/a on data with text alone

    def make_estimator(self) -> Any:
        raise NotImplementedError

    def design(self, split: Split) -> sp.csr_matrix:
        """One-hot categoricals and stage (encoder fit on the first split seen, i.e. train) + scaled numerics."""
        codes = split.codes()
        if not hasattr(self, "onehot"):  # None: no categorical input (numeric-only data)
            self.onehot = OneHotEncoder(handle_unknown="ignore", min_frequency=self.min_frequency).fit(codes) \
                if codes.shape[1] else None
        parts = ([self.onehot.transform(codes)] if self.onehot is not None else []) + [sp.csr_matrix(split.num)]
        return sp.hstack(parts, format="csr")

    def fit(self, train: Split, valid: Split) -> "SklearnClassifier":
        self.model = self.make_estimator().fit(self.design(train), train.y)
        return self

    def score(self, test: Split) -> np.ndarray:
        x = self.design(test)
        if hasattr(self.model, "decision_function"):
            return self.model.decision_function(x)
        return self.model.predict_proba(x)[:, 1]

"""Any scikit-learn classifier as a method: subclass :class:`SklearnClassifier`, return the estimator.

The design matrix is the one most teams would build, on the table part of the
dataset's input view (``Method.inputs``' default): categoricals and the current
stage (``Split.codes``) one-hot encoded (rare values below ``min_frequency``
pooled, unseen ones ignored) next to the store's scaled numerics. The encoder
is fit on the training split only, in ``fit``: a split scored before it would
otherwise decide the columns. The matrix is sparse where the estimator's tags
say it takes sparse input (scikit-learn's ``input_tags.sparse``), else dense
(e.g. HistGradientBoosting): a dense design holds rows x one-hot width floats,
so mind wide categoricals (``min_frequency`` pools the rare values).

The validation split reaches the estimator where its ``fit`` can use a given
one (:func:`validation_fit_params`): HistGradientBoosting early-stops on it
(``X_val``), LightGBM / XGBoost evaluate it (``eval_set``; their own early-stopping
parameters decide whether they stop on it). Others train on train alone; a
subclass that selects something on valid writes its own ``fit``, as logistic
regression does (``baselines/classical.py``).
"""

from __future__ import annotations

import inspect
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.preprocessing import OneHotEncoder

from feature_store.split import Split
from leadrank_api import Method


def validation_fit_params(estimator: Any, x_valid: Any, y_valid: np.ndarray) -> dict[str, Any]:
    """The keyword arguments that hand ``estimator.fit`` the validation split, by what its ``fit`` takes:
    ``X_val``/``y_val`` (HistGradientBoosting >= 1.7, unless its early stopping is off: it then refuses
    them), ``eval_set`` (LightGBM, XGBoost, CatBoost), else none. Never a share of train: the split
    is temporal, and the newest slice of train is the validation split already."""
    accepted = inspect.signature(estimator.fit).parameters
    if {"X_val", "y_val"} <= accepted.keys() and getattr(estimator, "early_stopping", "auto") is not False:
        return {"X_val": x_valid, "y_val": y_valid}
    if "eval_set" in accepted:
        return {"eval_set": [(x_valid, y_valid)]}
    return {}


class SklearnClassifier(Method):
    """Fit ``make_estimator()`` on the design of train; score = its decision function (or P(lock))."""

    min_frequency = 5  # one-hot: categories seen fewer times on train share one column
    requires = ("tabular",)  # a table model: n/a on data with text alone

    def make_estimator(self) -> Any:
        raise NotImplementedError

    def fit_design(self, train: Split, sparse: bool = True) -> sp.csr_matrix | np.ndarray:
        """Fit the one-hot encoder on ``train`` (the only split it ever sees) and return train's design,
        sparse or dense."""
        codes = train.codes()
        self.sparse = sparse
        self.onehot = OneHotEncoder(handle_unknown="ignore", min_frequency=self.min_frequency,  # None: numeric only
                                    sparse_output=sparse).fit(codes) if codes.shape[1] else None
        return self.design(train)

    def design(self, split: Split) -> sp.csr_matrix | np.ndarray:
        """One-hot categoricals and stage (encoder from :meth:`fit_design`) + scaled numerics."""
        if not hasattr(self, "sparse"):
            raise RuntimeError(f"{type(self).__name__}.design() before fit_design(train): the encoder is fit on train only")
        onehot = [self.onehot.transform(split.codes())] if self.onehot is not None else []
        if self.sparse:
            return sp.hstack([*onehot, sp.csr_matrix(split.num)], format="csr")
        return np.hstack([*onehot, split.num.astype(np.float64)])

    def fit(self, train: Split, valid: Split) -> "SklearnClassifier":
        estimator = self.make_estimator()
        x_train = self.fit_design(train, sparse=estimator.__sklearn_tags__().input_tags.sparse)
        self.valid_params = validation_fit_params(estimator, self.design(valid), valid.y)
        self.model = estimator.fit(x_train, train.y, **self.valid_params)
        return self

    def score(self, test: Split) -> np.ndarray:
        x = self.design(test)
        if hasattr(self.model, "decision_function"):
            return self.model.decision_function(x)
        return self.model.predict_proba(x)[:, 1]

    def run_info(self) -> dict[str, Any]:
        """How the validation split reached the estimator (recorded: an untuned fit is visible as such)."""
        return {"design": "sparse" if self.sparse else "dense",
                "valid_given_as": next(iter(self.valid_params), "not used by this estimator's fit")}

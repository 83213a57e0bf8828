"""Logistic regression: the classical model most lead-scoring teams would try before a deep model."""

from __future__ import annotations

from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from baselines.sklearn_adapter import SklearnClassifier
from feature_store.sampling import both_classes
from feature_store.split import Split
from leadrank_api import Params, register


class LogRegParams(Params):
    C_grid: tuple[float, ...] = (0.01, 0.1, 1.0)
    """Inverse L2 strengths tried; the one with the best validation AUC is kept."""
    max_iter: int = 2000
    """lbfgs iterations per fit."""


@register(name="logreg", family="classical", tables=("table1", "table2", "table3"),
          label="Logistic regression", params={"logreg": LogRegParams},
          description="Logistic regression (scikit-learn): one-hot categoricals + scaled numerics, C picked on valid")
class LogReg(SklearnClassifier):
    """L2 logistic regression on the adapter's design; C chosen by validation AUC."""

    def fit(self, train: Split, valid: Split) -> "LogReg":
        p = self.section("logreg")
        x_tr, x_va = self.fit_design(train), self.design(valid)
        best = None
        for c in p.C_grid:
            model = LogisticRegression(C=c, max_iter=p.max_iter).fit(x_tr, train.y)
            auc = roc_auc_score(valid.y, model.decision_function(x_va)) if both_classes(valid.y) else 0.0
            if best is None or auc > best[0]:
                best = (auc, c, model)
        self.valid_auc, self.C, self.model = best
        return self

    def run_info(self) -> dict:
        return {"C": self.C, "valid_auc": self.valid_auc}

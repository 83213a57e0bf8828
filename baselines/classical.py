"""Classical models most lead-scoring teams would try before a deep model."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import OneHotEncoder

from benchmark.registry import Method, register
from feature_store.store import Split


@register(name="logreg", family="classical", tables=("table1", "table2"), in_paper=False,
          description="Logistic regression (scikit-learn): one-hot categoricals + scaled numerics, C picked on valid")
class LogReg(Method):
    """L2 logistic regression. The store already scaled numerics on train; categoricals
    (train vocabulary codes, 0 = unseen) are one-hot encoded here. The regularisation
    strength is chosen by validation AUC from ``logreg.C_grid``."""

    def _design(self, split: Split) -> sp.csr_matrix:
        return sp.hstack([self.onehot.transform(split.cat), sp.csr_matrix(split.num)], format="csr")

    def fit(self, train: Split, valid: Split) -> "LogReg":
        self.onehot = OneHotEncoder(handle_unknown="ignore", min_frequency=5).fit(train.cat)
        x_tr, x_va = self._design(train), self._design(valid)
        best = None
        for c in self.ctx.get("logreg.C_grid", [0.01, 0.1, 1.0]):
            model = LogisticRegression(C=c, max_iter=2000).fit(x_tr, train.y)
            auc = roc_auc_score(valid.y, model.decision_function(x_va)) if len(set(valid.y)) == 2 else 0.0
            if best is None or auc > best[0]:
                best = (auc, c, model)
        self.valid_auc, self.C, self.model = best
        return self

    def score(self, test: Split) -> np.ndarray:
        return self.model.decision_function(self._design(test))

    def run_info(self) -> dict:
        return {"C": self.C, "valid_auc": self.valid_auc}

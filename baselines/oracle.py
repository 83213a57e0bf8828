"""The oracle: scores every lead by its true conversion probability.

Only synthetic worlds know ``p_true``. It is the ceiling of every table: no
honest model can beat it beyond its confidence interval.
"""

from __future__ import annotations

import numpy as np

from benchmark.registry import Method, register
from feature_store.store import Split


@register(name="oracle", family="oracle", tables=("table1", "table2"), requires=("p_true",), in_paper=False,
          description="Ceiling: the true conversion probability p_true (synthetic worlds only)")
class Oracle(Method):
    def fit(self, train: Split, valid: Split) -> "Oracle":
        return self

    def score(self, test: Split) -> np.ndarray:
        return test.p_true().copy()

"""Funnel rules: what a sales team does without a model."""

from __future__ import annotations

import numpy as np

from benchmark.registry import Method, register
from feature_store.errors import DataError
from feature_store.store import Split


def recency_order(split: Split, column: str | None) -> np.ndarray:
    """A score in [0, 1) that is larger for more recent activity.

    With ``column`` (days since the last activity) fewer days is more recent;
    without one, the lead's own scoring time stands in (newer = more recent)."""
    if column:
        if column not in split.raw:
            raise DataError(f"funnel.recency_column '{column}' is not a feature of dataset "
                            f"'{split.schema.dataset}'", column=column, hint="set --set funnel.recency_column=...")
        r = -np.nan_to_num(split.numeric(column), nan=np.nanmax(split.numeric(column)))
    else:
        r = split.time.astype("datetime64[s]").astype(np.float64)
    span = r.max() - r.min()
    return (r - r.min()) / (span + 1.0) if span > 0 else np.zeros(len(r))


@register(name="funnel_recency", family="rule", tables=("table2",), requires=("stage",),
          description="Funnel+Recency rule: deeper current stage first, then most recent activity")
class FunnelRecency(Method):
    """The paper's rule baseline. No training: the score is ``stage depth + recency in [0, 1)``."""

    def fit(self, train: Split, valid: Split) -> "FunnelRecency":
        return self

    def score(self, test: Split) -> np.ndarray:
        column = self.ctx.get("funnel.recency_column", "days_since_last_activity")
        return test.stage.astype(np.float64) + recency_order(test, column if column in test.raw else None)

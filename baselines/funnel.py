"""Funnel rules: what a sales team does without a model."""

from __future__ import annotations

import numpy as np

from feature_store.errors import DataError
from feature_store.schema import Inputs, Schema
from feature_store.split import Split
from leadrank_api import Method, Params, register


class FunnelParams(Params):
    recency_column: str | None = "days_since_last_activity"
    """Numeric feature of days since the last activity; without it (or null) the scoring time stands in."""


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


@register(name="funnel_recency", family="rule", tables=("table2",), requires=("stage",), order=1, in_paper=True,
          label="Funnel+Recency", zero_shot=True, params={"funnel": FunnelParams},
          description="Funnel+Recency rule: deeper current stage first, then most recent activity")
class FunnelRecency(Method):
    """The paper's rule baseline. No training: the score is ``stage depth + recency in [0, 1)``.

    A rule, not a model: it reads the current stage and one recency column (the scoring time
    where the data has no such column) and nothing else of the input view, and says so."""

    def _recency_column(self, schema: Schema) -> str | None:
        column = self.section("funnel").recency_column
        return column if column in schema.tabular else None

    def inputs(self, schema: Schema) -> Inputs:
        column = self._recency_column(schema) or schema.time_column
        return Inputs(columns=(column,) if column else (), stage=True)

    def fit(self, train: Split, valid: Split) -> "FunnelRecency":
        return self

    def score(self, test: Split) -> np.ndarray:
        return test.stage.astype(np.float64) + recency_order(test, self._recency_column(test.schema))


@register(name="stage_only", family="rule", tables=("table1",), requires=("stage",), in_paper=False,
          label="Stage only", zero_shot=True,
          description="Label-free reference: the current funnel stage alone (deeper first)")
class StageOnly(Method):
    """What needs no labels and no model: the score is the current stage's depth, nothing else.

    Leads of one stage tie, and stay tied (no recency tie-break, or this would be Funnel+Recency):
    the metrics' documented rule then applies — a tied pair counts one half in the AUC, and ties at a
    P@K cut get pro-rata credit. Every learned row of Table 1 should rank above it."""

    def inputs(self, schema: Schema) -> Inputs:
        return Inputs(stage=True)

    def fit(self, train: Split, valid: Split) -> "StageOnly":
        return self

    def score(self, test: Split) -> np.ndarray:
        return test.stage.astype(np.float64)

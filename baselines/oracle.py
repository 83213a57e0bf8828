"""The two ceilings: every lead scored by its true conversion probability.

Only synthetic worlds know it. ``oracle`` uses ``p_true``, the probability
given everything observable at the scoring moment: no honest model can beat it
beyond its confidence interval. ``oracle_table`` (a variant, in
``variants.yaml``) uses ``p_true_table``, the probability given everything but
the text (the transcript facts integrated out): the best a table-only model can
reach. The gap between the two is the most a text reader can gain.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from feature_store.schema import Inputs, Schema
from feature_store.split import Split
from leadrank_api import Method, Params, register


class OracleOptions(Params):
    given: Literal["everything", "table"] = "everything"
    """What the probability is conditioned on: every observable (p_true) or all but the text (p_true_table)."""


@register(name="oracle", family="oracle", tables=("table1", "table2", "table3"), requires=("p_true",),
          label="Oracle (p_true)", order=10_000, zero_shot=True,
          footnote="Oracle: scores = the true conversion probability p_true of the synthetic world; "
                   "the ceiling no honest model can pass beyond its CI.",
          description="Ceiling: the true conversion probability p_true (synthetic worlds only)")
class Oracle(Method):
    Options = OracleOptions
    options = OracleOptions()

    @classmethod
    def requires_for(cls, options: OracleOptions) -> tuple[str, ...]:
        return ("p_true_table",) if options.given == "table" else ("p_true",)

    def inputs(self, schema: Schema) -> Inputs:
        return Inputs()  # none of the view: the world's truth alone

    def fit(self, train: Split, valid: Split) -> "Oracle":
        return self

    def score(self, test: Split) -> np.ndarray:
        return test.p_true(table_only=self.options.given == "table").copy()

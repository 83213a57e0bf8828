"""Baselines: funnel rules, classical models (logistic regression, LightGBM) and the CTR models.

Importing this package registers every baseline with ``benchmark.registry``.
"""

from baselines import classical, ctr, funnel, gbdt, oracle  # noqa: F401  (registration side effects)

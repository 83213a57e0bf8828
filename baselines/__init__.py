"""Baselines: funnel rules, classical models and (issue 5) the CTR models.

Importing this package registers every baseline with ``benchmark.registry``.
"""

from baselines import classical, funnel, oracle  # noqa: F401  (registration side effects)

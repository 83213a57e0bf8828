"""Baselines: funnel rules, classical models (logistic regression, LightGBM), the CTR models and the oracle.

Importing this package registers every baseline with ``leadrank_api`` (the
benchmark imports it through the ``leadrank.methods`` entry point); the
twelve Table 1 CTR rows and Funnel+CTR are variants of one class, declared
in ``variants.yaml``.
"""

from pathlib import Path

import leadrank_api
from baselines import classical, ctr, funnel, gbdt, oracle  # noqa: F401  (registration side effects)

leadrank_api.register_variants_file(Path(__file__).with_name("variants.yaml"))

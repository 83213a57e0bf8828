"""The registry as the benchmark reads it: every method, built-in or plugin, and each table's rows.

There is one registry, ``leadrank_api``'s: it finds the method packages
(``baselines``, ``llm_ranker``, plugins) and the text-embedding providers
through their entry points on first use. This module adds only what the
benchmark asks of it: the rows of a table, in order.
"""

from __future__ import annotations

import leadrank_api as api
from leadrank_api import get, load_all  # noqa: F401  (the benchmark's callers name them through this module)
from leadrank_api import registered as all_methods  # noqa: F401


def rows(table: str) -> list[type[api.Method]]:
    """The methods that are rows of ``table``, in table order (paper rows first, then by name)."""
    return sorted((m for m in all_methods().values() if table in m.tables), key=lambda m: (m.order, m.name))

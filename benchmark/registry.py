"""Finds every method and text-embedding provider, built-in or plugin, the same way: entry points.

The method packages register themselves with ``leadrank_api.register`` when
imported; the benchmark imports them through the ``leadrank.methods`` entry
point (``baselines``, ``llm_ranker`` and any installed plugin, see
pyproject.toml) and the embedding providers through ``leadrank.embeddings``.
So the benchmark sits on top and no method package imports it.
"""

from __future__ import annotations

from importlib.metadata import entry_points

import leadrank_api as api
from feature_store.embeddings import ENTRY_POINT as EMBEDDINGS

_loaded = False


def load_all() -> None:
    """Import every ``leadrank.methods`` and ``leadrank.embeddings`` entry point once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for group in (api.ENTRY_POINT, EMBEDDINGS):
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            ep.load()


def all_methods() -> dict[str, type[api.Method]]:
    load_all()
    return api.registered()


def get(name: str) -> type[api.Method]:
    load_all()
    return api.get(name)


def rows(table: str) -> list[type[api.Method]]:
    """The methods that are rows of ``table``, in table order (paper rows first, then by name)."""
    return sorted((m for m in all_methods().values() if table in m.tables), key=lambda m: (m.order, m.name))

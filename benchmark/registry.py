"""The one registry of methods.

Adding a model is one class and one decorator::

    @register(name="my_model", family="classical", tables=("table1", "table2"),
              description="what it is, in one line")
    class MyModel(Method):
        def fit(self, train, valid):
            ...
            return self

        def score(self, test):
            return np.asarray(...)  # one finite score per test lead, higher = more likely to lock

Third-party packages can register methods through the ``leadrank.methods``
entry point (a module that is imported; its decorators do the rest).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any, ClassVar, Mapping

import numpy as np

from benchmark.profile import lookup
from feature_store.errors import ConfigError
from feature_store.store import Split

TABLES = ("table1", "table2")
# Capabilities a method may require from the data; the runner skips (and the
# table marks "n/a") a method whose requirement a dataset cannot meet.
REQUIREMENTS = ("text", "stage", "p_true", "h_text")
BUILTIN_MODULES = ("baselines", "llm_ranker")


@dataclass(frozen=True)
class MethodContext:
    """What a method gets at construction: its seed and the resolved profile."""

    seed: int = 0
    config: Mapping[str, Any] = field(default_factory=dict)
    progress: bool = False
    cache_dir: str = ".cache"

    def get(self, dotted: str, default: Any = None) -> Any:
        """A profile value by dotted key, e.g. ``ctx.get("ctr.epochs", 5)``."""
        return lookup(self.config, dotted, default)


class Method:
    """Base class of every ranker. Subclasses implement ``fit`` and ``score``."""

    name: ClassVar[str]
    family: ClassVar[str]
    tables: ClassVar[tuple[str, ...]]
    description: ClassVar[str]
    requires: ClassVar[tuple[str, ...]] = ()
    in_paper: ClassVar[bool] = True

    def __init__(self, ctx: MethodContext | None = None):
        self.ctx = ctx or MethodContext()

    def fit(self, train: Split, valid: Split) -> "Method":
        raise NotImplementedError

    def score(self, test: Split) -> np.ndarray:
        raise NotImplementedError

    def run_info(self) -> dict[str, Any]:
        """Extra facts recorded in the result JSON (e.g. the scoring rule used)."""
        return {}


_REGISTRY: dict[str, type[Method]] = {}
_loaded = False


def register(*, name: str, family: str, tables: tuple[str, ...] | list[str], description: str,
             requires: tuple[str, ...] = (), in_paper: bool = True):
    """Class decorator that adds a method to the registry under ``name``."""
    bad_tables = [t for t in tables if t not in TABLES]
    bad_req = [r for r in requires if r not in REQUIREMENTS]
    if bad_tables or bad_req:
        raise ValueError(f"method '{name}': unknown tables {bad_tables} or requirements {bad_req}")

    def deco(cls: type[Method]) -> type[Method]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name '{name}' is already registered by {_REGISTRY[name].__module__}."
                             f"{_REGISTRY[name].__qualname__}")
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register needs a subclass of benchmark.registry.Method, got {cls!r}")
        cls.name, cls.family, cls.tables, cls.description = name, family, tuple(tables), description
        cls.requires, cls.in_paper = tuple(requires), in_paper
        _REGISTRY[name] = cls
        return cls

    return deco


def unregister(name: str) -> None:
    """Remove a method (tests register throw-away methods)."""
    _REGISTRY.pop(name, None)


def load_all() -> None:
    """Import the built-in method packages and every ``leadrank.methods`` entry point once."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)
    for ep in entry_points(group="leadrank.methods"):
        ep.load()


def all_methods() -> dict[str, type[Method]]:
    load_all()
    return dict(sorted(_REGISTRY.items()))


def get(name: str) -> type[Method]:
    methods = all_methods()
    if name not in methods:
        raise ConfigError(f"unknown method '{name}'", hint=f"registered: {', '.join(methods)}")
    return methods[name]

"""Profiles: YAML files that fix datasets, methods, seeds and every knob of a run.

A profile is data, not code. ``--set a.b=c`` overrides any key (the value is
parsed as YAML, so ``--set eval.bootstrap=200`` is an int and
``--set seeds=[0,1]`` a list).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from feature_store.errors import ConfigError

PROFILE_DIR = Path(__file__).parent / "profiles"


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset of a profile: a synthetic world to generate, or a spec file."""

    name: str
    table: str
    world: str | None = None
    leads: int = 0
    seed: int = 0
    spec: str | None = None


@dataclass(frozen=True)
class Profile:
    name: str
    config: dict[str, Any]
    overrides: tuple[str, ...] = ()

    def get(self, dotted: str, default: Any = None) -> Any:
        return lookup(self.config, dotted, default)

    @property
    def datasets(self) -> list[DatasetEntry]:
        out = []
        for name, d in (self.config.get("datasets") or {}).items():
            try:
                out.append(DatasetEntry(name=name, **d))
            except TypeError as e:
                raise ConfigError(f"profile '{self.name}', dataset '{name}': {e}") from None
        return out

    @property
    def seeds(self) -> list[int]:
        return [int(s) for s in self.config.get("seeds", [0])]


def lookup(config: Mapping[str, Any], dotted: str, default: Any = None) -> Any:
    """``config["a"]["b"]`` for ``dotted = "a.b"``, or ``default`` where a level is missing."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def available() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


def load_profile(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Profile:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown profile '{name_or_path}'", hint=f"available: {', '.join(available())}")
    config = yaml.safe_load(path.read_text()) or {}
    for item in overrides:
        apply_override(config, item)
    return Profile(name=path.stem, config=config, overrides=tuple(overrides))


def apply_override(config: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        value = raw
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: '{part}' is a value, not a section")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)

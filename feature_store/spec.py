"""Dataset spec: the YAML contract between a dataset and every method.

A spec names the columns and their roles. The store trusts nothing else: a
column that is not listed is never handed to a model. :class:`DatasetSpec` is
both the YAML file's schema and the spec in memory, so each key is defined once.
The file is checked against it (strict: an unknown or misplaced key, or a
value of the wrong type, is a one-line :class:`SpecError` naming the key and
the file) and then by :meth:`DatasetSpec.validate`, before any data is read,
for the leakage rule: the label, an outcome column, a ``post_outcome`` column
(anything known only after the scoring moment) or ``p_true`` can never be a
feature or the current stage. Everything that needs the data itself is
checked by :mod:`feature_store.validate`.

Example (every field is documented in docs/own-data.md)::

    name: my-crm
    files: [leads.parquet]
    id: lead_id                # optional: without it the row number is the lead id
    time: scored_at
    label: converted
    label_positive: "Yes"      # the label's value that means converted (else 0/1)
    na_values: ["-", "unknown"]
    dtypes: {email_opt_out: bool}
    features:
      categorical: [source, city_tier]
      numeric: [age, app_opens_7d]
      text: [transcript]
    current_stage: stage
    stage_order: [new, contacted, visited, test_drive]
    outcomes: {final_stage: final_stage, call_seconds: call_seconds_after,
               final_stage_order: [defeat, call, visit, test_drive, lock]}
    post_outcome: [order_amount, churn_date]
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

import yaml
from pydantic import Field, PrivateAttr, field_validator, model_validator

from feature_store.errors import SpecError
from feature_store.files import atomic_write_text
from feature_store.typed import Settings, load_yaml, parse

ROLES = ("categorical", "numeric", "text")
# How a column's raw values are parsed (``dtypes``), before its role applies:
# string = as written; float/int = numbers (int: whole numbers only);
# bool = true/false, yes/no, y/n, t/f, 1/0 (any case) -> 1/0.
DTYPES = ("string", "float", "int", "bool")
TIME_FORMATS_EPOCH = ("unix_s", "unix_ms")  # time_format values for epoch numbers
SAFE_NAME = re.compile(r"\w[\w.+ -]*")  # a dataset name is a folder name under results/

Column = Annotated[str, Field(min_length=1)]
Scalar = str | int | float | bool  # bool accepted here so that validate() can explain YAML's bare Yes


class Features(Settings):
    """The feature columns by role: the only columns a model ever reads."""

    categorical: tuple[Column, ...] = ()
    """Codes and names; encoded with a train-only vocabulary, missing is its own value."""
    numeric: tuple[Column, ...] = ()
    """Numbers; missing (and inf) become the train median plus a missing flag."""
    text: tuple[Column, ...] = ()
    """Free text such as call transcripts or notes."""


class Outcomes(Settings):
    """Columns that describe what happened *after* the scoring moment.

    Training-time supervision only (HPRO's preference tiers); never features.
    """

    final_stage: Column | None = None
    """The deepest funnel stage the lead reached."""
    final_stage_order: tuple[str | int, ...] = ()
    """The final stages, shallow -> deep (e.g. defeat .. lock)."""
    call_seconds: Column | None = None
    """Talk time after the scoring moment."""

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.final_stage, self.call_seconds) if c)


class SplitSpec(Settings):
    """How train/valid/test are cut.

    ``temporal`` (default): test = the newest ``test_fraction`` of leads by the
    time column, valid = the newest ``valid_fraction`` of the rest.
    ``random``: a stratified random split with ``seed`` (for data without time).
    """

    kind: Literal["temporal", "random"] = "temporal"
    """temporal (needs 'time') or random (stratified by the label)."""
    test_fraction: Annotated[float, Field(gt=0, lt=1)] = 0.3
    """Share of leads in the test split."""
    valid_fraction: Annotated[float, Field(ge=0, lt=1)] = 0.1
    """Share of the rest in the validation slice."""
    seed: int = 0
    """Seed of the random split."""
    gap_days: Annotated[float, Field(ge=0)] = 0
    """Embargo (temporal split): train and valid drop the leads scored within this many days before the
    test cutoff, whose labels may only resolve after it (real exports: a lead scored yesterday has not
    converted yet)."""

    @model_validator(mode="after")
    def _gap_needs_time(self) -> "SplitSpec":
        if self.gap_days and self.kind != "temporal":
            raise ValueError("gap_days embargoes the days before a temporal cutoff: it needs kind: temporal")
        return self


class Generator(Settings):
    """What wrote a generated dataset: its identity is the data's fingerprint, so a world
    regenerated on another CPU (last-bit float differences) keeps its fingerprint."""

    generator: Column
    """The generator's name, e.g. leadrank-synthetic."""
    version: int
    """Bumped whenever the generator's output changes."""
    world: Column
    leads: int
    seed: int
    params: dict[str, float] = {}
    """World parameters set apart from the world's own (e.g. text_scale): a rescaled world is other data."""


SECTIONS = {"features": Features, "outcomes": Outcomes, "split": SplitSpec}


class DatasetSpec(Settings):
    """A dataset spec: the keys of a spec.yaml file, and the checked spec the store uses.

    Read from YAML by :meth:`from_dict`, which also records where it was read from (``base_dir``,
    ``source``: what error messages name). ``files``, ``label_positive`` and ``na_values`` may be
    written as one value or a list and are always tuples in memory; the features are read by role
    (:attr:`categorical`, :attr:`numeric`, :attr:`text`)."""

    name: Column
    """Results are filed under this name."""
    files: Column | Annotated[tuple[Column, ...], Field(min_length=1)]
    """Data file(s) relative to the spec; globs allowed."""
    id: Column | None = None
    """Unique lead id; without it the row number (0-based, in file order) is the id."""
    time: Column | None = None
    """The scoring moment; the temporal split key."""
    time_format: Column | None = None
    """strptime format, or unix_s / unix_ms; omitted: ISO 8601."""
    label: Column
    """The outcome to predict."""
    label_positive: Scalar | tuple[Scalar, ...] | None = Field(None, validate_default=True)
    """The label value(s) meaning converted; omitted: the label is 0/1."""
    na_values: Scalar | tuple[Scalar, ...] | None = Field(None, validate_default=True)
    """Extra strings meaning missing (besides '', NA, NULL, N/A, nan, ...)."""
    dtypes: dict[str, Literal["string", "float", "int", "bool"]] = {}
    """Type fixes applied before the role."""
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None
    """CSV field separator; omitted: ',' (or tab for .tsv)."""
    features: Features = Features()
    current_stage: Column | None = None
    """The funnel stage at the scoring moment (an input)."""
    stage_order: tuple[str | int, ...] = ()
    """Current stages, shallow -> deep."""
    outcomes: Outcomes = Outcomes()
    post_outcome: tuple[Column, ...] = ()
    """Other columns known only after the scoring moment: never read."""
    p_true: Column | None = None
    """The true conversion probability (synthetic worlds only)."""
    p_true_table: Column | None = None
    """The probability given everything but the text (synthetic worlds only): the table-only ceiling."""
    groups: dict[str, tuple[Column, ...]] = {}
    """How LLM prompts group the features."""
    split: SplitSpec = SplitSpec()
    generated_by: Generator | None = None
    """Set by a data generator: the fingerprint then comes from it, not from the file bytes."""

    _base_dir: Path = PrivateAttr(default=Path("."))
    _source: str = PrivateAttr(default="<memory>")

    @field_validator("files", "label_positive")
    @classmethod
    def _one_or_many(cls, value: Any) -> tuple:
        return _as_tuple(value)

    @field_validator("na_values")
    @classmethod
    def _missing_as_strings(cls, value: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in _as_tuple(value))

    @property
    def base_dir(self) -> Path:
        """The folder the spec was read from: ``files`` are relative to it."""
        return self._base_dir

    @property
    def source(self) -> str:
        """The spec file's path (what error messages name), or '<memory>'."""
        return self._source

    @property
    def categorical(self) -> tuple[str, ...]:
        return self.features.categorical

    @property
    def numeric(self) -> tuple[str, ...]:
        return self.features.numeric

    @property
    def text(self) -> tuple[str, ...]:
        return self.features.text

    @property
    def feature_columns(self) -> tuple[str, ...]:
        """Every feature column, by role: categorical, numeric, text."""
        return self.categorical + self.numeric + self.text

    @property
    def oracles(self) -> tuple[str, ...]:
        """The true-probability columns (p_true, p_true_table): ceilings, never inputs."""
        return tuple(c for c in (self.p_true, self.p_true_table) if c)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the spec reads, each once (post-outcome columns are never read)."""
        cols = [self.id, self.time, self.label, *self.feature_columns, self.current_stage, *self.outcomes.columns,
                *self.oracles]
        return tuple(dict.fromkeys(c for c in cols if c))

    @property
    def paths(self) -> list[Path]:
        """Every data file once, in the order the entries of ``files`` first match it."""
        return list(self.file_matches())

    def file_matches(self) -> dict[Path, list[str]]:
        """Each data file and the entries of ``files`` that match it. A file matched by two entries
        (``[data.csv, "*.csv"]``) is read once: read twice, every lead would have an exact copy, and
        one of the two could land in train and the other in test. Files are told apart by their
        resolved path (``data.csv`` and ``./data.csv`` are one file)."""
        out: dict[Path, list[str]] = {}
        seen: dict[Path, Path] = {}
        for pattern in self.files:
            matches = sorted(self.base_dir.glob(pattern)) if any(c in pattern for c in "*?[") \
                else [self.base_dir / pattern]
            if not matches:
                raise SpecError(f"no data file matches '{pattern}'", file=self.source,
                                hint="paths in 'files' are relative to the spec's folder")
            for path in matches:
                out.setdefault(seen.setdefault(path.resolve(), path), []).append(pattern)
        return out

    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """Groups for prompts: the spec's own, else one group per role."""
        if self.groups:
            return dict(self.groups)
        return {title: cols for title, cols in (("Categorical features", self.categorical),
                                                ("Numeric features", self.numeric)) if cols}

    def validate(self) -> "DatasetSpec":
        """Refuse specs that leak outcomes into features or name columns inconsistently."""
        src = self.source
        if not SAFE_NAME.fullmatch(self.name) or self.name.strip() != self.name:
            raise SpecError(f"name {self.name!r} is not a plain folder name (results are written under it)",
                            file=src, hint="use letters, digits, spaces and - _ . +, starting with a letter or digit")
        forbidden = {self.label: "the label"} | {c: "an outcome column" for c in self.outcomes.columns} \
            | {c: "a post-outcome column" for c in self.post_outcome}
        forbidden |= {c: f"a true-probability column ({c})" for c in self.oracles}
        seen: dict[str, str] = {}
        for role in ROLES:
            for col in getattr(self, role):
                if col in forbidden:
                    raise SpecError(f"{forbidden[col]} is listed as a {role} feature; that would leak "
                                    "the answer into the model's inputs", file=src, column=col,
                                    hint="remove it from 'features'")
                if col in seen:
                    raise SpecError(f"listed twice, as {seen[col]} and {role}", file=src, column=col)
                if col in (self.id, self.time):
                    raise SpecError("the id/time column cannot also be a feature", file=src, column=col)
                seen[col] = role
        if self.current_stage in forbidden:
            raise SpecError(f"{forbidden[self.current_stage]} cannot be the current stage: the current "
                            "stage must be observable at scoring time", file=src, column=self.current_stage)
        for col in self.post_outcome:
            if col in self.columns:
                raise SpecError("a post_outcome column is never read, so it cannot also be the id, time, label, "
                                "an outcome or p_true", file=src, column=col)
        if not self.feature_columns:
            raise SpecError("no features listed", file=src, hint="add 'features: {categorical: [...]}'")
        if self.split.kind == "temporal" and not self.time:
            raise SpecError("a temporal split needs a 'time' column", file=src,
                            hint="set 'time:' or use 'split: {kind: random}'")
        for title, cols in self.groups.items():
            for col in cols:
                if col not in seen:
                    raise SpecError(f"group '{title}' names a column that is not a feature", file=src, column=col)
        self._validate_parsing()
        return self

    def _validate_parsing(self) -> None:
        """The fields that say how raw values are read (dtypes, label_positive)."""
        src = self.source
        for col, kind in self.dtypes.items():
            if col not in self.columns:
                raise SpecError("'dtypes' names a column the spec does not use", file=src, column=col)
            if col in self.text and kind != "string":
                raise SpecError(f"a text column cannot have dtype '{kind}'", file=src, column=col)
            if col in self.numeric and kind == "string":
                raise SpecError("a numeric feature cannot have dtype 'string'", file=src, column=col,
                                hint="list it under 'categorical' instead")
        for value in self.label_positive:
            if isinstance(value, bool):
                raise SpecError(f"label_positive was read as the boolean {value} (YAML reads unquoted "
                                "Yes/No/True/On as booleans)", file=src, column=self.label,
                                hint='quote it, e.g. label_positive: "Yes"')

    # ---- YAML ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, base_dir: Path = Path("."), source: str = "<memory>") -> "DatasetSpec":
        """The spec of a parsed YAML mapping; every mistake is a one-line SpecError naming ``source``."""
        if not isinstance(d, Mapping):
            raise SpecError(f"a spec must be a YAML mapping of keys to values, not {type(d).__name__}", file=source)
        d = {k: v for k, v in d.items() if v is not None}  # 'outcomes:' with nothing under it = not given
        for key in d:
            home = [name for name, section in SECTIONS.items() if key in section.model_fields]
            if key not in cls.model_fields and home:
                raise SpecError(f"'{key}' is not a top-level key: it belongs under '{home[0]}:'", file=source,
                                hint="check its indentation")
        spec = parse(cls, d, error=SpecError, file=source)
        spec._base_dir, spec._source = base_dir, source
        return spec.validate()

    def to_dict(self) -> dict[str, Any]:
        """The YAML mapping of this spec. Its serialization is part of the data fingerprint, so optional
        keys appear only when set (a new key must not change the fingerprint of existing specs)."""
        d: dict[str, Any] = {"name": self.name, "files": list(self.files)}
        if self.id:
            d["id"] = self.id
        d |= {"time": self.time, "label": self.label,
              "features": {r: list(getattr(self, r)) for r in ROLES if getattr(self, r)}}
        if self.time_format:
            d["time_format"] = self.time_format
        if self.current_stage:
            d["current_stage"], d["stage_order"] = self.current_stage, list(self.stage_order)
        if self.outcomes.columns:
            d["outcomes"] = {"final_stage": self.outcomes.final_stage, "call_seconds": self.outcomes.call_seconds,
                             "final_stage_order": list(self.outcomes.final_stage_order)}
        if self.post_outcome:
            d["post_outcome"] = list(self.post_outcome)
        if self.p_true:
            d["p_true"] = self.p_true
        if self.p_true_table:
            d["p_true_table"] = self.p_true_table
        if self.groups:
            d["groups"] = {k: list(v) for k, v in self.groups.items()}
        d["split"] = self.split.model_dump(mode="json", exclude=set() if self.split.gap_days else {"gap_days"})
        if self.dtypes:
            d["dtypes"] = dict(self.dtypes)
        if self.label_positive:
            d["label_positive"] = list(self.label_positive)
        if self.na_values:
            d["na_values"] = list(self.na_values)
        if self.delimiter:
            d["delimiter"] = self.delimiter
        if self.generated_by:
            # without params where there are none: a world as built in keeps its fingerprint
            d["generated_by"] = self.generated_by.model_dump(mode="json", exclude_defaults=True)
        return d

    def save(self, path: Path, header: str = "") -> None:
        """Write the spec as YAML (atomically), after ``header`` (comment lines)."""
        atomic_write_text(path, header + yaml.safe_dump(self.to_dict(), sort_keys=False, width=120))


def _as_tuple(value: Any) -> tuple:
    """A YAML scalar or list as a tuple (``label_positive: "Yes"`` or ``[Won, Won-upsell]``)."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def load_spec(path: str | Path) -> DatasetSpec:
    path = Path(path)
    if not path.is_file():
        raise SpecError("spec file not found", file=str(path))
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        raise SpecError(f"the spec is not UTF-8 text (byte {e.start})", file=str(path)) from None
    d = load_yaml(text, file=str(path), error=SpecError)
    return DatasetSpec.from_dict(d, base_dir=path.parent, source=str(path))

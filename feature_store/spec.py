"""Dataset spec: the YAML contract between a dataset and every method.

A spec names the columns and their roles. The store trusts nothing else: a
column that is not listed is never handed to a model. The one rule enforced
here, before any data is read, is the leakage rule — the label, an outcome
column (anything that happens after the scoring moment) or ``p_true`` can
never be listed as a feature or as the current stage. Everything that needs
the data itself is checked by :mod:`feature_store.validate`.

Example (every field is documented in the README, "Benchmark your own leads")::

    name: my-crm
    files: [leads.parquet]
    id: lead_id
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
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from feature_store.errors import SpecError

ROLES = ("categorical", "numeric", "text")
# How a column's raw values are parsed (``dtypes``), before its role applies:
# string = as written; float/int = numbers (int: whole numbers only);
# bool = true/false, yes/no, y/n, t/f, 1/0 (any case) -> 1/0.
DTYPES = ("string", "float", "int", "bool")
TIME_FORMATS_EPOCH = ("unix_s", "unix_ms")  # time_format values for epoch numbers


@dataclass(frozen=True)
class Outcomes:
    """Columns that describe what happened *after* the scoring moment.

    Training-time supervision only (HPRO's preference tiers); never features.
    """

    final_stage: str | None = None
    final_stage_order: tuple[str, ...] = ()  # shallow -> deep, e.g. defeat .. lock
    call_seconds: str | None = None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(c for c in (self.final_stage, self.call_seconds) if c)


@dataclass(frozen=True)
class SplitSpec:
    """How train/valid/test are cut.

    ``temporal`` (default): test = the newest ``test_fraction`` of leads by the
    time column, valid = the newest ``valid_fraction`` of the rest.
    ``random``: a stratified random split with ``seed`` (for data without time).
    """

    kind: str = "temporal"
    test_fraction: float = 0.3
    valid_fraction: float = 0.1
    seed: int = 0


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    files: tuple[str, ...]
    id: str
    label: str
    categorical: tuple[str, ...] = ()
    numeric: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    time: str | None = None
    time_format: str | None = None
    current_stage: str | None = None
    stage_order: tuple[str, ...] = ()  # shallow -> deep
    outcomes: Outcomes = field(default_factory=Outcomes)
    p_true: str | None = None
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)
    split: SplitSpec = field(default_factory=SplitSpec)
    dtypes: dict[str, str] = field(default_factory=dict)
    label_positive: tuple[str | int | float, ...] = ()  # label values meaning "converted"; () = label is 0/1
    na_values: tuple[str, ...] = ()  # extra strings that mean "missing" (besides '', NA, NULL, N/A, nan, ...)
    delimiter: str | None = None  # CSV field separator; None = ',' (or tab for .tsv)
    base_dir: Path = Path(".")
    source: str = "<memory>"

    @property
    def features(self) -> tuple[str, ...]:
        return self.categorical + self.numeric + self.text

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column the spec names, each once: the only ones ever read."""
        cols = [self.id, self.time, self.label, *self.features, self.current_stage, *self.outcomes.columns,
                self.p_true]
        return tuple(dict.fromkeys(c for c in cols if c))

    @property
    def paths(self) -> list[Path]:
        out: list[Path] = []
        for pattern in self.files:
            matches = sorted(self.base_dir.glob(pattern)) if any(c in pattern for c in "*?[") \
                else [self.base_dir / pattern]
            if not matches:
                raise SpecError(f"no data file matches '{pattern}'", file=self.source,
                                hint="paths in 'files' are relative to the spec's folder")
            out.extend(matches)
        return out

    def feature_groups(self) -> dict[str, tuple[str, ...]]:
        """Groups for prompts: the spec's own, else one group per role."""
        if self.groups:
            return dict(self.groups)
        return {title: cols for title, cols in (("Categorical features", self.categorical),
                                                ("Numeric features", self.numeric)) if cols}

    def validate(self) -> "DatasetSpec":
        """Refuse specs that are malformed or leak outcomes into features."""
        src = self.source
        forbidden = {self.label: "the label"} | {c: "an outcome column" for c in self.outcomes.columns}
        if self.p_true:
            forbidden[self.p_true] = "the true-probability column (p_true)"
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
        if not self.features:
            raise SpecError("no features listed", file=src, hint="add 'features: {categorical: [...]}'")
        if self.split.kind not in ("temporal", "random"):
            raise SpecError(f"split.kind must be 'temporal' or 'random', not '{self.split.kind}'", file=src)
        if self.split.kind == "temporal" and not self.time:
            raise SpecError("a temporal split needs a 'time' column", file=src,
                            hint="set 'time:' or use 'split: {kind: random}'")
        if not 0 < self.split.test_fraction < 1 or not 0 <= self.split.valid_fraction < 1:
            raise SpecError("split fractions must lie in (0, 1)", file=src)
        for title, cols in self.groups.items():
            for col in cols:
                if col not in seen:
                    raise SpecError(f"group '{title}' names a column that is not a feature", file=src, column=col)
        self._validate_parsing()
        return self

    def _validate_parsing(self) -> None:
        """The fields that say how raw values are read (dtypes, label_positive, delimiter)."""
        src = self.source
        for col, kind in self.dtypes.items():
            if col not in self.columns:
                raise SpecError("'dtypes' names a column the spec does not use", file=src, column=col)
            if kind not in DTYPES:
                raise SpecError(f"unknown dtype '{kind}'", file=src, column=col, hint=f"one of {list(DTYPES)}")
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
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise SpecError(f"delimiter must be one character, not {self.delimiter!r}", file=src)

    # ---- YAML ---------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any], *, base_dir: Path = Path("."), source: str = "<memory>") -> "DatasetSpec":
        known = {f.name for f in dataclasses.fields(cls)} | {"features"}
        unknown = sorted(set(d) - known - {"base_dir", "source"})
        if unknown:
            raise SpecError(f"unknown key(s) {unknown}", file=source, hint=f"known keys: {sorted(known)}")
        for key in ("name", "files", "id", "label"):
            if not d.get(key):
                raise SpecError(f"missing required key '{key}'", file=source)
        feats = d.get("features") or {}
        bad_roles = sorted(set(feats) - set(ROLES))
        if bad_roles:
            raise SpecError(f"unknown feature role(s) {bad_roles}; roles are {list(ROLES)}", file=source)
        files = d["files"]
        outcomes = d.get("outcomes") or {}
        try:
            spec = cls(
                name=str(d["name"]), files=tuple([files] if isinstance(files, str) else files),
                id=d["id"], label=d["label"], time=d.get("time"), time_format=d.get("time_format"),
                categorical=tuple(feats.get("categorical") or ()), numeric=tuple(feats.get("numeric") or ()),
                text=tuple(feats.get("text") or ()), current_stage=d.get("current_stage"),
                stage_order=tuple(d.get("stage_order") or ()),
                outcomes=Outcomes(final_stage=outcomes.get("final_stage"),
                                  final_stage_order=tuple(outcomes.get("final_stage_order") or ()),
                                  call_seconds=outcomes.get("call_seconds")),
                p_true=d.get("p_true"),
                groups={str(k): tuple(v) for k, v in (d.get("groups") or {}).items()},
                split=SplitSpec(**(d.get("split") or {})), dtypes=dict(d.get("dtypes") or {}),
                label_positive=_as_tuple(d.get("label_positive")),
                na_values=tuple(str(v) for v in _as_tuple(d.get("na_values"))), delimiter=d.get("delimiter"),
                base_dir=base_dir, source=source)
        except TypeError as e:  # e.g. an unknown key under 'split'
            raise SpecError(str(e), file=source) from None
        return spec.validate()

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "files": list(self.files), "id": self.id, "time": self.time,
                             "label": self.label,
                             "features": {r: list(getattr(self, r)) for r in ROLES if getattr(self, r)}}
        if self.time_format:
            d["time_format"] = self.time_format
        if self.current_stage:
            d["current_stage"], d["stage_order"] = self.current_stage, list(self.stage_order)
        if self.outcomes.columns:
            d["outcomes"] = {"final_stage": self.outcomes.final_stage, "call_seconds": self.outcomes.call_seconds,
                             "final_stage_order": list(self.outcomes.final_stage_order)}
        if self.p_true:
            d["p_true"] = self.p_true
        if self.groups:
            d["groups"] = {k: list(v) for k, v in self.groups.items()}
        d["split"] = dataclasses.asdict(self.split)
        if self.dtypes:
            d["dtypes"] = dict(self.dtypes)
        if self.label_positive:
            d["label_positive"] = list(self.label_positive)
        if self.na_values:
            d["na_values"] = list(self.na_values)
        if self.delimiter:
            d["delimiter"] = self.delimiter
        return d

    def save(self, path: Path) -> None:
        path.write_text(yaml.safe_dump(self.to_dict(), sort_keys=False, width=120))


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
        d = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SpecError(f"not valid YAML: {e}".splitlines()[0], file=str(path)) from None
    if not isinstance(d, dict):
        raise SpecError("a spec must be a YAML mapping", file=str(path))
    return DatasetSpec.from_dict(d, base_dir=path.parent, source=str(path))

"""Validation of a dataset against its spec: every problem at once, each saying where and what to do.

Errors make a run impossible or its numbers meaningless; ``Dataset.load``
raises the first one before any job starts, so a failed validation never
leaves result files behind. Warnings are printed and the run goes on.
``leadrank validate`` prints all of them with a summary of what the data has.

Errors: a data file or a named column is missing; a value cannot be typed (a
time, a number, the label); the label is not binary or is missing; a lead id is
missing or duplicated; a time is missing; a column is missing in every row; a
categorical column has one value in every row; a text column holds numbers; a
stage value is not in the stage order; the train or test split has no positives
(metrics would be undefined).
Warnings: a column is mostly missing, constant, or on its own almost identical
to the label (likely leakage: its AUC alone is named); the validation slice
has no positives; the test split has few positives (wide CIs).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feature_store.errors import DataError, LeadrankError
from feature_store.ingest import Ingested, read
from feature_store.spec import DatasetSpec

MISSING_WARN = 0.5  # warn when more than this share of a column is missing
LEAK_AUC = 0.95  # warn when one column alone ranks leads at least this well (or this badly)
LEAK_SAMPLE = 200_000  # leads used for the leakage check (a fixed-seed sample of larger data)
MIN_TEST_POSITIVES = 30  # fewer test positives than this: CIs will be wide
TEXT_SAMPLE = 10_000  # values inspected to decide whether a text column holds text


@dataclass(frozen=True)
class Problem:
    """One finding. ``level`` is "error" (the run cannot go on) or "warning"."""

    level: str
    message: str
    file: str | None = None
    column: str | None = None
    row: int | None = None
    hint: str | None = None

    @classmethod
    def from_error(cls, e: LeadrankError) -> "Problem":
        return cls("error", e.message, e.file, e.column, e.row, e.hint)

    def as_error(self) -> DataError:
        return DataError(self.message, file=self.file, column=self.column, row=self.row, hint=self.hint)

    def __str__(self) -> str:
        return str(self.as_error())


@dataclass
class Report:
    """What validation found, and the typed frame when there were no errors."""

    spec: DatasetSpec
    problems: list[Problem] = field(default_factory=list)
    ingested: Ingested | None = None
    splits: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (leads, positives)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.level == "warning"]

    def raise_for_errors(self) -> None:
        """Raise the first error (one line), saying how many more there are."""
        if not self.errors:
            return
        first = self.errors[0]
        more = len(self.errors) - 1
        hint = first.hint
        if more:
            hint = (f"{hint}; " if hint else "") + f"{more} more error(s): run `leadrank validate {self.spec.source}`"
        raise DataError(first.message, file=first.file, column=first.column, row=first.row, hint=hint)

    def summary(self) -> str:
        sp, lines = self.spec, [f"dataset '{self.spec.name}' (spec {self.spec.source})"]
        ing = self.ingested
        if ing is not None:
            lines.append("  files: " + ", ".join(f"{s.path.name} ({s.rows:,} rows)" for s in ing.sources))
            y = ing.frame[sp.label]
            n, pos = len(y), int(y.fillna(0).sum())
            lines.append(f"  leads: {n:,}, positives: {pos:,} ({100 * pos / max(n, 1):.2f} %)")
            if sp.time and not ing.frame[sp.time].isna().all():
                t = ing.frame[sp.time]
                lines.append(f"  scoring times (UTC): {t.min()} .. {t.max()}")
            lines.append(f"  features: {len(sp.categorical)} categorical, {len(sp.numeric)} numeric, "
                         f"{len(sp.text)} text")
            if ing.unused_columns:
                lines.append(f"  not in the spec, so never read: {', '.join(ing.unused_columns)}")
        if self.splits:
            kind = "temporal (by time)" if sp.split.kind == "temporal" else f"random stratified (seed {sp.split.seed})"
            parts = [f"{k} {n:,} ({p:,} positive)" for k, (n, p) in self.splits.items()]
            lines.append(f"  split: {kind}: " + ", ".join(parts))
        gaps = data_gaps(bool(sp.text), bool(sp.current_stage), bool(sp.outcomes.columns))
        lines += [f"  {g}" for g in gaps] or ["  text, current stage and outcome funnel present: every method applies"]
        if not sp.p_true:
            lines.append("  no p_true: no oracle row (it exists only for synthetic worlds)")
        for level, items in (("warning", self.warnings), ("error", self.errors)):
            lines += [f"{level}: {p}" for p in items]
        verdict = (f"INVALID: {len(self.errors)} error(s)" if self.errors
                   else f"OK ({len(self.warnings)} warning(s))")
        return "\n".join(lines + [verdict])


def data_gaps(has_text: bool, has_stage: bool, has_outcomes: bool, llm: bool = True, hpro: bool = True) -> list[str]:
    """What each method does with what the data lacks (validate's summary and the table footnotes)."""
    gaps = []
    if not has_text:
        gaps.append("no text column: '+h_text' rows are n/a" + ("; LLM rows read prompts of the table features "
                                                                 "only (no dialogue part)" if llm else ""))
    if not has_stage:
        gaps.append("no current funnel stage: funnel rows (Funnel+Recency, Funnel+CTR) are n/a")
    if not has_outcomes and hpro:
        gaps.append("no outcome funnel: HPRO uses label-only pairs (converted over not converted)")
    return gaps


def check(spec: DatasetSpec) -> Report:
    """Read the spec's data and check it. Never raises for data problems: they are in the report."""
    report = Report(spec)
    try:
        report.ingested = read(spec)
    except DataError as e:
        report.problems.append(Problem.from_error(e))
        return report
    ing = report.ingested
    report.problems += _value_problems(spec, ing)
    report.problems += _column_problems(spec, ing)
    if report.errors:
        return report
    ing.frame[spec.label] = ing.frame[spec.label].astype(np.int8)
    report.problems += _split_problems(spec, ing, report)
    report.problems += _leakage_warnings(spec, ing.frame)
    return report


# ---- values ---------------------------------------------------------------------

def _at(ing: Ingested, level: str, message: str, column: str, row: int, hint: str | None = None) -> Problem:
    file, line = ing.locate(row)
    return Problem(level, message, file, column, line, hint)


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0])


def _value_problems(spec: DatasetSpec, ing: Ingested) -> list[Problem]:
    df, out = ing.frame, []
    hints = {spec.time: "set 'time_format', e.g. '%d.%m.%Y %H:%M', or unix_s / unix_ms for epoch numbers",
             spec.label: 'the label must be 0/1; if the export says e.g. Yes/No, set label_positive: "Yes"'}
    for col, bad in ing.bad.items():
        what = "label is not 0/1: found" if col == spec.label else "cannot read"
        out.append(_at(ing, "error", f"{what} {bad.value!r} (expected {bad.expected})", col, bad.row,
                       hints.get(col, "fix the value, add it to 'na_values' if it means missing, "
                                      "or list the column as categorical")))
    if len(ing.label_values) > 1:
        values = list(ing.label_values)
        out.append(_at(ing, "error", f"label is not binary: besides label_positive {list(spec.label_positive)} it "
                       f"holds {values} (every other value must mean 'not converted', so only one may occur)",
                       spec.label, ing.label_values[values[1]],
                       "list every value meaning 'converted' in label_positive, spelled exactly, and drop "
                       "leads that are still open"))
    if spec.label not in ing.bad:
        missing = df[spec.label].isna()
        if missing.any():
            out.append(_at(ing, "error", "missing label", spec.label, _first(missing),
                           "drop leads whose outcome is not known yet (still open)"))
    for col, what in ((spec.id, "lead id"), (spec.time, "scoring time")):
        if col and col not in ing.bad and df[col].isna().any():
            out.append(_at(ing, "error", f"missing {what}", col, _first(df[col].isna()),
                           "every lead needs an id and the time it was scored"))
    dup = df[spec.id].duplicated() & df[spec.id].notna()
    if dup.any():
        i = _first(dup)
        j = _first(df[spec.id] == df[spec.id].iloc[i])
        file, line = ing.locate(j)
        where = f"row {line}" + ("" if file == ing.locate(i)[0] else f" of {file}")
        out.append(_at(ing, "error", f"duplicate lead id {df[spec.id].iloc[i]!r}, first at {where}",
                       spec.id, i, "one row per lead: deduplicate the export"))
    return out


# ---- columns --------------------------------------------------------------------

def _column_problems(spec: DatasetSpec, ing: Ingested) -> list[Problem]:
    df, src, out = ing.frame, ing.files, []
    stages = {spec.current_stage: (spec.stage_order, "stage_order"),
              spec.outcomes.final_stage: (spec.outcomes.final_stage_order, "outcomes.final_stage_order")}
    checked = [*spec.features, *(c for c in (spec.current_stage, *spec.outcomes.columns) if c)]
    for col in checked:
        s = df[col]
        missing = float(s.isna().mean()) if len(s) else 0.0
        if col in ing.bad:
            continue
        if missing == 1.0:
            out.append(Problem("error", "every value is missing", src, col,
                               hint="fix the export, or remove the column from the spec"))
            continue
        constant = _is_constant(s)
        if col in spec.categorical and constant and missing == 0.0:
            out.append(Problem("error", f"categorical column has one value ({s.iloc[0]!r}) in every row, so it "
                               "cannot tell leads apart", src, col, hint="remove it from 'features'"))
            continue
        if col in spec.text:
            out += _text_problems(ing, col)
        if col in stages:
            out += _stage_problems(ing, col, *stages[col])
        if missing > MISSING_WARN and col not in spec.outcomes.columns:
            out.append(Problem("warning", f"{100 * missing:.0f} % of values are missing", src, col,
                               hint="models see missing as its own value; check the export if this is unexpected"))
        if col in spec.features and constant:
            out.append(Problem("warning", f"constant: every non-missing value is {s.dropna().iloc[0]!r}", src, col,
                               hint="it carries no signal beyond being missing; remove it or check the export"))
    if spec.p_true and spec.p_true not in ing.bad:
        p = df[spec.p_true]
        bad = p.notna() & ((p < 0) | (p > 1))
        if bad.any():
            out.append(_at(ing, "error", f"p_true {p[bad].iloc[0]} is not a probability", spec.p_true, _first(bad)))
    return out


def _is_constant(s: pd.Series) -> bool:
    """Every non-missing value equal (a comparison, not a hash of every long text)."""
    present = s.dropna()
    return len(present) > 0 and bool((present == present.iloc[0]).all())


def _text_problems(ing: Ingested, col: str) -> list[Problem]:
    s = ing.frame[col]
    hint = "text means free text such as call transcripts or notes; list codes and numbers as categorical or numeric"
    present = s.notna()
    if not (pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)):
        return [_at(ing, "error", f"text column holds {s.dtype} values, not text", col, _first(present), hint)]
    sample = s[present].head(TEXT_SAMPLE)
    not_str = ~sample.map(lambda v: isinstance(v, str)).astype(bool)
    if not_str.any():  # e.g. bytes or lists from a Parquet file
        i = int(sample.index[_first(not_str)])
        return [_at(ing, "error", f"text column holds {type(s.iloc[i]).__name__} values, not text", col, i, hint)]
    if len(sample) and pd.to_numeric(sample.astype("string").str.strip(), errors="coerce").notna().all():
        i = int(sample.index[0])
        return [_at(ing, "error", f"text column holds only numbers (e.g. {s.iloc[i]!r}), not text", col, i, hint)]
    return []


def _stage_problems(ing: Ingested, col: str, order: tuple[str, ...], field_name: str) -> list[Problem]:
    s = ing.frame[col]
    unknown = s.notna() & ~s.astype("string").isin([str(v) for v in order])
    if not unknown.any():
        return []
    values = sorted(map(str, s[unknown].unique()))[:8]
    return [_at(ing, "error", f"stage value(s) {values} are not in {field_name} {list(order)}", col, _first(unknown),
                f"add them to {field_name}, shallow to deep")]


# ---- splits and leakage ---------------------------------------------------------

def _split_problems(spec: DatasetSpec, ing: Ingested, report: Report) -> list[Problem]:
    from feature_store.store import Dataset

    src, y = spec.source, ing.frame[spec.label].to_numpy()
    if spec.label_positive and y.sum() == 0:
        return [Problem("error", f"no row has a label value in label_positive {list(spec.label_positive)}; "
                        f"values found: {list(ing.label_values)}", src, spec.label,
                        hint="spell label_positive exactly as the export does")]
    try:
        fit, valid, test = Dataset(spec, ing.frame, ing.fingerprint).split_indices()
    except DataError as e:
        return [Problem.from_error(e)]
    report.splits = {name: (len(idx), int(y[idx].sum())) for name, idx in
                     (("train", fit), ("valid", valid), ("test", test))}
    (n_fit, p_fit), (n_valid, p_valid), (n_test, p_test) = report.splits.values()
    more = "use more data, a larger split.test_fraction, or split: {kind: random}"
    out = []
    if p_test == 0:
        out.append(Problem("error", f"the test split has no positives (0 of {n_test:,} leads): AUC, P@K and R@K "
                           "are undefined", src, spec.label, hint=more))
    if p_fit == 0:
        out.append(Problem("error", f"the training split has no positives (0 of {n_fit:,} leads): nothing to "
                           "learn from", src, spec.label, hint=more))
    if n_valid and p_valid == 0:
        out.append(Problem("warning", f"the validation slice has no positives (0 of {n_valid:,}): validation AUC "
                           "is undefined, so early stopping and model selection cannot use it", src, spec.label,
                           hint="raise split.valid_fraction"))
    if 0 < p_test < MIN_TEST_POSITIVES:
        out.append(Problem("warning", f"only {p_test} positives in the test split: confidence intervals will be wide",
                           src, spec.label, hint=more))
    return out


def _leakage_warnings(spec: DatasetSpec, df: pd.DataFrame) -> list[Problem]:
    """Columns that on their own rank leads almost perfectly: likely recorded after the outcome."""
    rng = np.random.default_rng(0)
    if len(df) > LEAK_SAMPLE:
        df = df.iloc[np.sort(rng.choice(len(df), LEAK_SAMPLE, replace=False))]
    y = df[spec.label].to_numpy().astype(bool)
    if y.all() or not y.any():
        return []
    fold = rng.integers(0, 2, len(df))
    out = []
    for col in [*spec.categorical, *spec.numeric, *([spec.current_stage] if spec.current_stage else [])]:
        if col in spec.numeric:  # missing ranked lowest and highest: missingness itself can be the leak
            scores = [_numeric_scores(df[col], high) for high in (True, False)]
        else:
            scores = [_out_of_fold_rates(df[col], y, fold)]
        auc = max(max(a, 1 - a) for a in (_auc(y, s) for s in scores))
        if auc >= LEAK_AUC:
            out.append(Problem("warning", f"on its own this column ranks leads with AUC {auc:.3f}: almost identical "
                               "to the label (likely leakage)", spec.source, col,
                               hint="if it is recorded after the scoring moment (an order date, a win reason), "
                                    "remove it from the spec"))
    return out


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    """Mann-Whitney AUC with average ranks for ties (fast enough for every column of large data)."""
    from scipy.stats import rankdata

    n_pos, n_neg = int(y.sum()), int((~y).sum())
    return float((rankdata(score)[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _numeric_scores(s: pd.Series, missing_high: bool) -> np.ndarray:
    x = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64)
    finite = x[np.isfinite(x)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    return np.where(np.isfinite(x), x, hi + 1 if missing_high else lo - 1)


def _out_of_fold_rates(s: pd.Series, y: np.ndarray, fold: np.ndarray) -> np.ndarray:
    """Each lead scored by its category's positive rate in the other half (honest for ids with few rows)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=False)  # missing is a category of its own
    score = np.empty(len(y))
    for k in (0, 1):
        fit, apply = fold != k, fold == k
        count = np.bincount(codes[fit], minlength=len(uniques))
        pos = np.bincount(codes[fit], weights=y[fit], minlength=len(uniques))
        prior = y[fit].mean() if fit.any() else 0.0
        rate = np.divide(pos, count, out=np.full(len(uniques), prior), where=count > 0)
        score[apply] = rate[codes[apply]]
    return score

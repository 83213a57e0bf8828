"""Validation of a dataset against its spec: every problem at once, each saying where and what to do.

Errors make a run impossible or its numbers meaningless; ``Dataset.load``
raises the first one before any job starts, so a failed validation never
leaves result files behind. Warnings are printed and the run goes on.
``leadrank validate`` prints all of them with a summary of what the data has.
A problem names the data file, the column and the row; where several rows
have the same problem it counts them all and lists the first few.

Errors: a data file or a named column is missing; a file is empty or holds
only a header; a column the spec reads appears twice in a header; CSV lines
have another number of fields than the header; a value cannot be typed (a
time, a time outside 1677..2262, a number, the label, text that is not
UTF-8); the label is not binary, is missing, or has one class in the whole
data; a lead id is missing or duplicated, also once the spaces around it are
stripped; a time is missing; a column is missing in every row; a categorical
column has one value in every row; a text column holds numbers; a stage
value is not in the stage order; the train or test split lacks a class
(metrics would be undefined), checked on the very cut a run uses
(:mod:`feature_store.sampling`).
Warnings: a data file is matched by several entries of ``files`` (it is read
once); a column is mostly missing, constant, or on its own almost identical
to the label (likely leakage: its AUC alone is named); a numeric feature has
infinite values; a categorical is id-like (most values occur once); a
``post_outcome`` column is not in the data; the validation slice lacks a class
(every method then trains without early stopping); the test split has few
positives (wide CIs); scoring times lie after today, or further past the
newest training lead than the whole training period spans (a temporal split
puts such leads, often placeholders, in the test split).

A run records every warning in each result (``warnings``) and the tables
repeat them under the dataset's table, so they outlive the screen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from feature_store.errors import DataError, LeadrankError
from feature_store.ingest import SHOWN_BAD, UTF8, Ingested, plain, read
from feature_store.sampling import PARTS, both_classes, split_indices
from feature_store.spec import DatasetSpec

MISSING_WARN = 0.5  # warn when more than this share of a column is missing
LEAK_AUC = 0.95  # warn when one column alone ranks leads at least this well (or this badly)
LEAK_SAMPLE = 200_000  # leads used for the leakage check (a fixed-seed sample of larger data)
MIN_TEST_POSITIVES = 30  # fewer test positives than this: CIs will be wide
TEXT_SAMPLE = 10_000  # values inspected to decide whether a text column holds text
ID_LIKE = 0.5  # warn when more than this share of leads has a categorical value that no other lead has


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

    def summary(self, notes: Sequence[str] = ()) -> str:
        """What was read and found, one fact a line; ``notes`` (shown after the split) are the caller's lines on
        what the data means for the methods, which the feature store does not know."""
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
            if not sp.id:
                lines.append("  lead id: none in the spec, so the row number (0-based, in file order) is the id")
            if sp.post_outcome:
                lines.append(f"  known only after scoring (post_outcome), never read: {', '.join(sp.post_outcome)}")
            unused = [c for c in ing.unused_columns if c not in sp.post_outcome]
            if unused:
                lines.append(f"  not in the spec, so never read: {', '.join(unused)}")
        if self.splits:
            kind = "temporal (by time)" if sp.split.kind == "temporal" else f"random stratified (seed {sp.split.seed})"
            parts = [f"{k} {n:,} ({p:,} positive)" for k, (n, p) in self.splits.items()]
            lines.append(f"  split: {kind}: " + ", ".join(parts))
        lines += [f"  {n}" for n in notes]
        if not sp.p_true:
            lines.append("  no p_true: no oracle row (it exists only for synthetic worlds)")
        for level, items in (("warning", self.warnings), ("error", self.errors)):
            lines += [f"{level}: {p}" for p in items]
        verdict = (f"INVALID: {len(self.errors)} error(s)" if self.errors
                   else f"OK ({len(self.warnings)} warning(s))")
        return "\n".join(lines + [verdict])


def check(spec: DatasetSpec) -> Report:
    """Read the spec's data and check it. Never raises for data problems: they are in the report."""
    report = Report(spec)
    try:
        report.ingested = read(spec)
    except DataError as e:
        report.problems.append(Problem.from_error(e))
        return report
    ing = report.ingested
    for file, patterns in ing.repeated.items():
        report.problems.append(Problem("warning", f"matched by {len(patterns)} entries of 'files' "
                                       f"({', '.join(map(repr, patterns))}): read once", file,
                                       hint="list each data file once"))
    if not len(ing.frame):
        report.problems.append(Problem("error", "the data file(s) hold no rows, only a header", ing.files,
                                       hint="export the leads again; check the export's filters"))
        return report
    report.problems += _value_problems(spec, ing)
    report.problems += _column_problems(spec, ing)
    if report.errors:
        return report
    ing.frame[spec.label] = ing.frame[spec.label].astype(np.int8)
    report.problems += _class_problems(spec, ing, report)
    report.problems += _leakage_warnings(spec, ing)
    return report


# ---- values ---------------------------------------------------------------------

def _at_rows(ing: Ingested, level: str, what: str, column: str, rows: list[int], count: int = 1,
             values: list[str] | None = None, hint: str | None = None) -> Problem:
    """A problem in ``count`` rows of which ``rows`` (frame positions) are shown, each with its value text.

    One row is named in the location; several are listed in the message, counted, with the file of every
    row that is not in the first row's file."""
    file, line = ing.locate(rows[0])
    if count == 1:
        return Problem(level, what + (f": {values[0]}" if values else ""), file, column, line, hint)
    items = []
    for k, row in enumerate(rows):
        other, n = ing.locate(row)
        item = f"{n}" + ("" if other == file else f" of {other}")
        items.append(item if values is None else f"row {item} ({values[k]})")
    listed = ("rows " if values is None else "") + ", ".join(items)
    more = f" and {count - len(rows):,} more" if count > len(rows) else ""
    return Problem(level, f"{what} in {count:,} rows: {listed}{more}", file, column, hint=hint)


def _flag(ing: Ingested, level: str, what: str, column: str, mask, hint: str | None = None,
          show=None) -> list[Problem]:
    """The problem of every row where ``mask`` holds (none when it holds nowhere); ``show(row)``: its value text."""
    rows = np.flatnonzero(np.asarray(mask, dtype=bool))
    if not len(rows):
        return []
    shown = rows[:SHOWN_BAD].tolist()
    values = None if show is None else [show(r) for r in shown]
    return [_at_rows(ing, level, what, column, shown, len(rows), values, hint)]


def _value_of(s: pd.Series):
    """``show`` for :func:`_flag`: a row's value as Python writes it."""
    return lambda row: repr(plain(s.iloc[row]))


def _first(mask: pd.Series) -> int:
    return _first_of(mask.to_numpy())


def _first_of(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _value_problems(spec: DatasetSpec, ing: Ingested) -> list[Problem]:
    df, out = ing.frame, []
    hints = {spec.time: "set 'time_format', e.g. '%d.%m.%Y %H:%M', or unix_s / unix_ms for epoch numbers",
             spec.label: 'the label must be 0/1; if the export says e.g. Yes/No, set label_positive: "Yes"'}
    for col, bad in ing.bad.items():
        hint = bad.hint or ("save the export as UTF-8" if bad.expected == UTF8 else hints.get(
            col, "fix the value, add it to 'na_values' if it means missing, or list the column as categorical"))
        out.append(_at_rows(ing, "error", f"not {bad.expected}", col, bad.rows, bad.count,
                            [repr(v) for v in bad.values], hint))
    if len(ing.label_values) > 1:
        values = list(ing.label_values)
        out.append(_at_rows(ing, "error", f"label is not binary: besides label_positive {list(spec.label_positive)} "
                            f"it holds {values} (every other value must mean 'not converted', so only one may occur)",
                            spec.label, [ing.label_values[values[1]]],
                            hint="list every value meaning 'converted' in label_positive, spelled exactly, and drop "
                                 "leads that are still open"))
    if spec.label not in ing.bad:
        out += _flag(ing, "error", "missing label", spec.label, df[spec.label].isna(),
                     "drop leads whose outcome is not known yet (still open)")
    for col, what in ((spec.id, "missing lead id"), (spec.time, "missing scoring time")):
        if col and col not in ing.bad:
            out += _flag(ing, "error", what, col, df[col].isna(), "every lead needs an id and the time it was scored")
    if spec.id:
        ids = df[spec.id]

        def first_seen(row: int) -> str:
            file, line = ing.locate(_first(ids == ids.iloc[row]))
            return f"{ids.iloc[row]!r}, first at row {line}" + ("" if file == ing.locate(row)[0] else f" of {file}")

        out += _flag(ing, "error", "duplicate lead id", spec.id, ids.duplicated() & ids.notna(),
                     "one row per lead: deduplicate the export", first_seen)
        out += _spaced_ids(ing, spec.id)
    return out


def _spaced_ids(ing: Ingested, col: str) -> list[Problem]:
    """Ids that differ only in the spaces around them (' C00000', 'C00000 '): to a person, and to a CRM
    that trims them, one lead; the scores file would hold both."""
    ids = ing.frame[col]
    if not (pd.api.types.is_string_dtype(ids) or pd.api.types.is_object_dtype(ids)):
        return []
    key = ids.astype("string").str.strip()
    clash = key.duplicated() & key.notna() & ~ids.duplicated()

    def first_seen(row: int) -> str:
        first = _first(key == key.iloc[row])
        file, line = ing.locate(first)
        return (f"{ids.iloc[row]!r}, as {ids.iloc[first]!r} at row {line}"
                + ("" if file == ing.locate(row)[0] else f" of {file}"))

    return _flag(ing, "error", "lead id equal to another one once the spaces around it are stripped",
                 col, clash,
                 "one row per lead: remove the spaces around the ids in the export", first_seen)


# ---- columns --------------------------------------------------------------------

def _column_problems(spec: DatasetSpec, ing: Ingested) -> list[Problem]:
    df, src, out = ing.frame, ing.files, []
    stages = {spec.current_stage: (spec.stage_order, "stage_order"),
              spec.outcomes.final_stage: (spec.outcomes.final_stage_order, "outcomes.final_stage_order")}
    checked = [*spec.feature_columns, *(c for c in (spec.current_stage, *spec.outcomes.columns) if c)]
    for col in checked:
        s = df[col]
        missing = float(s.isna().mean())
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
        if col in spec.feature_columns and constant:
            out.append(Problem("warning", f"constant: every non-missing value is {s.dropna().iloc[0]!r}", src, col,
                               hint="it carries no signal beyond being missing; remove it or check the export"))
        if col in spec.numeric:
            out += _flag(ing, "warning", "infinite value (read as missing: the train median plus a missing flag)",
                         col, np.isinf(s.to_numpy(dtype=np.float64)), show=_value_of(s))
        if col in spec.categorical:
            out += _id_like(ing, col)
    for col in spec.oracles:
        if col not in ing.bad:
            p = df[col]
            name = "p_true" if col == spec.p_true else "p_true_table"
            out += _flag(ing, "error", f"{name} is not a probability", col, p.notna() & ((p < 0) | (p > 1)),
                         show=_value_of(p))
    for col in spec.post_outcome:
        if col not in ing.file_columns:
            out.append(Problem("warning", "post_outcome names a column the data does not have", src, col,
                               hint="check its spelling: post_outcome keeps that column out of the features"))
    return out


def _is_constant(s: pd.Series) -> bool:
    """Every non-missing value equal (a comparison, not a hash of every long text, nor a copy of the
    present values: a text column of millions of leads is gigabytes)."""
    present = s.notna().to_numpy()
    if not present.any():
        return False
    return bool((s == s.iloc[_first_of(present)]).to_numpy(dtype=bool, na_value=True)[present].all())


def _id_like(ing: Ingested, col: str) -> list[Problem]:
    """A categorical whose values mostly occur once (an id, an email): nothing learnt from it carries over."""
    counts = ing.frame[col].value_counts()
    once = int((counts == 1).sum())
    if once <= ID_LIKE * len(ing.frame):
        return []
    return [Problem("warning", f"{once:,} of {len(ing.frame):,} leads have a value no other lead has (an id?): "
                    "at test time such values are unseen (the out-of-vocabulary code), so the column carries "
                    "little signal and makes embedding tables large", ing.files, col,
                    hint="remove it from 'features', or map its values to coarser groups")]


def _text_problems(ing: Ingested, col: str) -> list[Problem]:
    s = ing.frame[col]
    hint = "text means free text such as call transcripts or notes; list codes and numbers as categorical or numeric"
    present = s.notna()
    if not (pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s)):
        return [_at_rows(ing, "error", f"text column holds {s.dtype} values, not text", col, [_first(present)],
                         hint=hint)]
    sample = s.iloc[np.flatnonzero(present.to_numpy())[:TEXT_SAMPLE]]  # copies those values only
    not_str = ~sample.map(lambda v: isinstance(v, str)).astype(bool)
    if not_str.any():  # e.g. bytes or lists from a Parquet file
        i = int(sample.index[_first(not_str)])
        return [_at_rows(ing, "error", f"text column holds {type(s.iloc[i]).__name__} values, not text", col, [i],
                         hint=hint)]
    if len(sample) and pd.to_numeric(sample.astype("string").str.strip(), errors="coerce").notna().all():
        i = int(sample.index[0])
        return [_at_rows(ing, "error", f"text column holds only numbers (e.g. {s.iloc[i]!r}), not text", col, [i],
                         hint=hint)]
    return []


def _stage_problems(ing: Ingested, col: str, order: tuple[str | int, ...], field_name: str) -> list[Problem]:
    s = ing.frame[col]
    unknown = s.notna() & ~s.astype("string").isin([str(v) for v in order])
    values = sorted(map(str, s[unknown].unique()))[:8]
    return _flag(ing, "error", f"stage value(s) {values} are not in {field_name} {list(order)}", col, unknown,
                 f"add them to {field_name}, shallow to deep")


# ---- classes, splits and leakage ------------------------------------------------

def _class_problems(spec: DatasetSpec, ing: Ingested, report: Report) -> list[Problem]:
    """Both classes in the whole data, then in every part of the split (the cut a run will use)."""
    src, y = ing.files, ing.frame[spec.label].to_numpy()
    if not both_classes(y):
        if spec.label_positive and not y.any():
            return [Problem("error", f"no row has a label value in label_positive {list(spec.label_positive)}; "
                            f"values found: {list(ing.label_values)}", src, spec.label,
                            hint="spell label_positive exactly as the export does")]
        which = "converted (1)" if y.any() else "not converted (0)"
        return [Problem("error", f"the label has one class: all {len(y):,} leads are {which}, so there is nothing "
                        "to rank", src, spec.label, hint="the export must hold converted and not converted leads")]
    try:
        parts = split_indices(spec, ing.frame)
    except DataError as e:
        return [dataclasses.replace(Problem.from_error(e), file=src)]
    report.splits = {name: (len(idx), int(y[idx].sum())) for name, idx in zip(PARTS, parts)}
    out = _late_times(spec, ing, parts) if spec.split.kind == "temporal" else []
    for name, (n, pos) in report.splits.items():
        lacking = "positives" if pos == 0 else "negatives" if pos == n else None
        counts = f"({pos:,} of {n:,} leads positive)"
        if name == "valid" and lacking:  # every method copes (no early stopping): a warning
            out.append(Problem("warning", f"the validation slice has no {lacking} {counts}: validation AUC is "
                               "undefined, so early stopping and model selection cannot use it", src, spec.label,
                               hint="raise split.valid_fraction"))
        elif lacking:
            what = ("test split", "AUC, P@K and R@K are undefined") if name == "test" \
                else ("training split", "nothing to learn from")
            out.append(Problem("error", f"the {what[0]} has no {lacking} {counts}: {what[1]}", src, spec.label,
                               hint=_more_data(spec, name)))
        elif name == "test" and pos < MIN_TEST_POSITIVES:
            out.append(Problem("warning", f"only {pos} positives in the test split: confidence intervals will be "
                               "wide", src, spec.label, hint=_more_data(spec, name)))
    return out


def _late_times(spec: DatasetSpec, ing: Ingested, parts: tuple[np.ndarray, ...]) -> list[Problem]:
    """Scoring times in the future, or further past the newest training lead than the whole training period
    spans: placeholders (2099-01-01) or typos rather than moments a lead was scored. A temporal split puts
    them all in the test split, whose positive rate and metrics they then skew."""
    t = ing.frame[spec.time]
    fit, valid, test = parts
    seen = t.iloc[np.concatenate([fit, valid])]
    newest, span = seen.max(), seen.max() - seen.min()
    now = pd.Timestamp.now(tz="UTC").tz_localize(None)
    future = (t > now).to_numpy()
    far = (t > newest + span).to_numpy() & ~future
    out = []
    for mask, what in ((future, f"scoring time in the future (after {now:%Y-%m-%d %H:%M} UTC)"),
                       (far, f"scoring time more than the whole training period ({span.days:,} days) after the "
                             f"newest training lead ({newest})")):
        in_test = int(mask[test].sum())
        out += _flag(ing, "warning", what, spec.time, mask, show=lambda row: str(t.iloc[row]),
                     hint=f"{in_test:,} of the test split's {len(test):,} leads have such a time: fix those times "
                          "or drop the leads; a placeholder date is no scoring moment")
    return out


def _more_data(spec: DatasetSpec, part: str) -> str:
    """What gives ``part`` more leads of each class (a random split is suggested only where it is not one)."""
    fraction = "a larger" if part == "test" else "a smaller"
    other = ", or split: {kind: random}" if spec.split.kind == "temporal" else ""
    return f"use more data or {fraction} split.test_fraction{other}"


def _leakage_warnings(spec: DatasetSpec, ing: Ingested) -> list[Problem]:
    """Columns that on their own rank leads almost perfectly: likely recorded after the outcome."""
    columns = [*spec.categorical, *spec.numeric, *([spec.current_stage] if spec.current_stage else [])]
    df, rng = ing.frame[list(dict.fromkeys([spec.label, *columns]))], np.random.default_rng(0)  # no texts
    if len(df) > LEAK_SAMPLE:
        df = df.iloc[np.sort(rng.choice(len(df), LEAK_SAMPLE, replace=False))]
    y = df[spec.label].to_numpy().astype(bool)
    if not both_classes(y):
        return []
    fold = rng.integers(0, 2, len(df))
    out = []
    for col in columns:
        if col in spec.numeric:  # missing ranked lowest and highest: missingness itself can be the leak
            scores = [_numeric_scores(df[col], high) for high in (True, False)]
        else:
            scores = [_out_of_fold_rates(df[col], y, fold)]
        auc = max(max(a, 1 - a) for a in (_auc(y, s) for s in scores))
        if auc >= LEAK_AUC:
            out.append(Problem("warning", f"on its own this column ranks leads with AUC {auc:.3f}: almost identical "
                               "to the label (likely leakage)", ing.files, col,
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

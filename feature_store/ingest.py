"""Reading a dataset's files into one typed frame, batch by batch.

Only the columns the spec names are read. Parquet is read per record batch
and CSV through pyarrow's streaming reader, every CSV column as a string: a
streaming reader infers types from its first block and would fail (without a
row number) when a later block disagrees, and strings keep leading zeros of
codes such as zip codes. Each batch is then typed by the column's role (and its
``dtypes`` fix, if any), so a bad value is caught with its file and row while
only one batch is held besides the result.

Typing rules: numeric features, call seconds and ``p_true`` become numbers;
the time column becomes naive UTC datetimes (``time_format``, ``unix_s``/
``unix_ms``, or ISO 8601; offsets such as ``+02:00`` are converted to UTC,
times without an offset are taken as UTC), within the range a nanosecond
time column holds (1677 to 2262: a sentinel such as 9999-12-31, or epoch
milliseconds read as seconds, is a bad value); the label becomes 0/1 (through
``label_positive`` where the export says e.g. "Yes"/"No"); categorical values
become one vocabulary of text whatever the file format (:func:`category_text`:
a Parquet float 1.0, a Parquet int 1 and a CSV "1.0" or "1" are all "1");
text and stage columns keep their values; CSV text is decoded as UTF-8. A value
that cannot be typed is not raised here: it is recorded (how many per column,
and the first few with their rows) for :mod:`feature_store.validate`, which
reports every problem at once, and read as missing.

Missing is the same in both formats: in a column typed as numbers, the strings
a CSV reader reads as missing (``""``, ``NA``, ``NULL``, ``N/A``, ``nan``, ...:
Arrow's defaults) are missing in a Parquet file too, where they are stored as
text; ``na_values`` adds to them in both.

A file is refused when it cannot mean what the spec says: a column the spec
reads appears twice in its header (which one is meant?), or CSV lines have
another number of fields than the header (every such line counted, the first
ten listed with their row and line numbers).

Rows are numbered from 1 within their file, the header not counted (row 1 is
line 2 of a CSV).

The data fingerprint (recorded in every result, and the key that lets a rerun
skip finished jobs) is a hash of the file bytes and the spec, except for a
generated dataset (``generated_by`` in its spec): there it is a hash of the
spec alone, generator identity included, so the same world regenerated on
another CPU, whose floats may differ in the last bit, has the same fingerprint.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from feature_store.errors import DataError
from feature_store.spec import TIME_FORMATS_EPOCH, DatasetSpec

BATCH_ROWS = 65_536  # Parquet rows per batch
CSV_BLOCK_BYTES = 8 << 20  # CSV bytes per batch
SHOWN_BAD = 10  # bad values remembered per column (all of them are counted)
UTF8 = "UTF-8 text"  # what a CSV value that is not UTF-8 was expected to be
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})
CSV_NULLS = frozenset(pacsv.ConvertOptions().null_values)  # what a CSV reader reads as missing
TIME_RANGE = (pd.Timestamp.min.ceil("us"), pd.Timestamp.max.floor("us"))  # what a datetime64[ns] column holds
IN_TIME_RANGE = f"a time from {TIME_RANGE[0]:%Y-%m-%d} to {TIME_RANGE[1]:%Y-%m-%d}"
OUT_OF_RANGE_HINT = ("a sentinel such as 9999-12-31 stands for 'no date': drop those leads or give them their "
                     "scoring time; epoch numbers 1,000 times too large are milliseconds: set time_format: unix_ms")


@dataclass
class BadValues:
    """Values of one column that could not be typed: how many, and the first few with their rows
    (``rows``: positions in the whole frame)."""

    expected: str
    count: int = 0
    rows: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)
    hint: str | None = None  # what to do, where it differs from the column's usual hint


@dataclass(frozen=True)
class Source:
    """One data file and the frame rows that came from it."""

    path: Path
    start: int
    rows: int
    all_columns: tuple[str, ...]


@dataclass
class Ingested:
    """The typed frame of a spec's files, plus what reading found wrong."""

    frame: pd.DataFrame
    fingerprint: str
    sources: list[Source]
    bad: dict[str, BadValues] = field(default_factory=dict)
    label_values: dict[str, int] = field(default_factory=dict)  # with label_positive: negative value -> first row
    repeated: dict[str, list[str]] = field(default_factory=dict)  # file -> the entries of 'files' matching it, if > 1

    def locate(self, row: int) -> tuple[str, int]:
        """(file, 1-based data row in that file) of a frame row."""
        for s in self.sources:
            if s.start <= row < s.start + s.rows:
                return str(s.path), row - s.start + 1
        raise IndexError(row)

    @property
    def files(self) -> str:
        """The data file(s), as problems about a whole column name them."""
        names = [str(s.path) for s in self.sources]
        return names[0] + (f" (and {len(names) - 1} more file(s))" if len(names) > 1 else "")

    @property
    def file_columns(self) -> set[str]:
        return {c for s in self.sources for c in s.all_columns}

    @property
    def unused_columns(self) -> list[str]:
        """Columns of the files that the spec does not name (never read, never handed to a model)."""
        return sorted(self.file_columns - set(self.frame.columns))


def read(spec: DatasetSpec) -> Ingested:
    """Every row of the spec's files, spec columns only, typed by role. Raises DataError when a
    file cannot be read at all (missing or empty file, missing columns, malformed CSV)."""
    matches = spec.file_matches()
    paths = list(matches)
    columns = list(spec.columns)
    typer = _Typer(spec)
    frames, sources, start = [], [], 0
    for path in paths:
        available = _column_names(path, spec)
        _check_columns(path, columns, available)
        n, csv = 0, _kind(path) == "csv"
        for batch in _batches(path, columns, spec):
            frames.append(typer.apply(typer.decode(batch, start + n) if csv else batch.to_pandas(), start + n))
            n += batch.num_rows
        sources.append(Source(path, start, n, tuple(available)))
        start += n
    frame = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)
    del frames
    pa.default_memory_pool().release_unused()  # Arrow's allocator keeps the batches' freed blocks otherwise
    repeated = {str(p): patterns for p, patterns in matches.items() if len(patterns) > 1}
    return Ingested(frame, fingerprint(spec, paths), sources, typer.bad, typer.label_values, repeated)


def fingerprint(spec: DatasetSpec, paths: list[Path]) -> str:
    """The data fingerprint: the generator's identity for generated data, else the file contents."""
    described = yaml.safe_dump(spec.to_dict(), sort_keys=True).encode()
    if spec.generated_by:
        return hashlib.sha256(described).hexdigest()[:16]
    return file_digest(paths, described)


def file_digest(paths: list[Path], extra: bytes = b"") -> str:
    """Content hash of the data files (and ``extra``: the spec)."""
    h = hashlib.sha256(extra)
    for p in paths:
        h.update(p.name.encode())
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                h.update(block)
    return h.hexdigest()[:16]


# ---- files --------------------------------------------------------------------

def _kind(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes[-1:] in ([".parquet"], [".pq"]):
        return "parquet"
    if suffixes[-1:] in ([".csv"], [".tsv"]) or suffixes[-2:] in ([".csv", ".gz"], [".tsv", ".gz"]):
        return "csv"
    raise DataError(f"unsupported file type '{''.join(path.suffixes)}'", file=str(path),
                    hint="use .parquet, .csv, .tsv or .csv.gz")


def _parse_options(path: Path, spec: DatasetSpec) -> pacsv.ParseOptions:
    tab = ".tsv" in [s.lower() for s in path.suffixes]
    return pacsv.ParseOptions(delimiter=spec.delimiter or ("\t" if tab else ","))


def _column_names(path: Path, spec: DatasetSpec) -> list[str]:
    if not path.is_file():
        raise DataError("data file not found", file=str(path), hint="paths in 'files' are relative to the spec")
    if path.stat().st_size == 0:
        raise DataError("the file is empty (0 bytes)", file=str(path),
                        hint="export it again: a CSV needs at least its header line")
    try:
        if _kind(path) == "parquet":
            return pq.read_schema(path).names
        header_only = pacsv.ParseOptions(delimiter=_parse_options(path, spec).delimiter,
                                         invalid_row_handler=lambda row: "skip")  # names only; rows are read later
        return pacsv.open_csv(path, parse_options=header_only).schema.names
    except pa.ArrowException as e:
        raise DataError(f"cannot read the file: {_first_line(e)}", file=str(path)) from None
    except UnicodeDecodeError:
        raise DataError("the header line is not UTF-8 text", file=str(path), hint="save the export as UTF-8") from None


def _check_columns(path: Path, wanted: list[str], available: list[str]) -> None:
    for col in wanted:
        at = [i + 1 for i, name in enumerate(available) if name == col]
        if len(at) > 1:  # a reader keeps one of them, silently
            raise DataError(f"the header names this column {len(at)} times (columns {', '.join(map(str, at))} of "
                            f"{len(available)}), so which one the spec means is ambiguous", file=str(path),
                            column=col, hint="rename or remove the copies in the export")
    missing = [c for c in wanted if c not in available]
    if not missing:
        return
    hints = []
    for col in missing:
        close = difflib.get_close_matches(col, available, n=1, cutoff=0.5)
        if close:
            hints.append(f"'{col}' -> '{close[0]}'?")
    if len(available) == 1 and any(d in available[0] for d in ";|\t,"):
        hints.append("the header was read as one column: set 'delimiter' in the spec")
    hints.append(f"the file has {len(available)} columns: {available[:12]}" + (" ..." if len(available) > 12 else ""))
    raise DataError(f"column(s) named in the spec are missing from the data: {missing}", file=str(path),
                    column=missing[0], hint="; ".join(hints))


def _batches(path: Path, columns: list[str], spec: DatasetSpec) -> Iterator[pa.RecordBatch]:
    try:
        if _kind(path) == "parquet":
            yield from pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=columns)
            return
        opts = pacsv.ConvertOptions(include_columns=columns, column_types={c: pa.binary() for c in columns},
                                    strings_can_be_null=True)  # bytes: _Typer.decode names a non-UTF-8 value
        ragged = _RaggedLines()
        parse = _parse_options(path, spec)
        parse.invalid_row_handler = ragged
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                parse_options=parse, convert_options=opts)
        yield from reader
    except pa.ArrowException as e:
        raise DataError(f"cannot read the file: {_first_line(e)}", file=str(path),
                        hint="check quoting and the number of fields per line") from None
    ragged.raise_for(path)


class _RaggedLines:
    """Arrow's handler of CSV lines whose number of fields differs from the header's: it counts them and keeps
    the first few (a streaming reader knows no line numbers, so :meth:`raise_for` finds them in the file)."""

    def __init__(self) -> None:
        self.count, self.shown = 0, []

    def __call__(self, row) -> str:
        self.count += 1
        if len(self.shown) < SHOWN_BAD:
            self.shown.append((row.text, row.actual_columns, row.expected_columns))
        return "skip"  # the file is refused once it is read: every such line counted

    def raise_for(self, path: Path) -> None:
        if not self.count:
            return
        lines = _line_numbers(path, [text for text, _, _ in self.shown])
        listed = ", ".join(f"row {n - 1} (line {n}: {fields} fields)" if n else f"{fields} fields: {text[:60]!r}"
                           for n, (text, fields, _) in zip(lines, self.shown))
        more = f" and {self.count - len(self.shown):,} more" if self.count > len(self.shown) else ""
        raise DataError(f"{self.count:,} line(s) have another number of fields than the header's "
                        f"{self.shown[0][2]}: {listed}{more}", file=str(path),
                        hint="a field holding the delimiter must be quoted; check the 'delimiter' and the export")


def _line_numbers(path: Path, texts: list[str]) -> list[int | None]:
    """The 1-based line number of each of ``texts`` (whole lines, in file order), None where not found."""
    found: list[int | None] = [None] * len(texts)
    k = 0
    with (gzip.open(path, "rb") if path.suffix.lower() == ".gz" else open(path, "rb")) as f:
        for n, line in enumerate(f, start=1):
            if k == len(texts):
                break
            if line.rstrip(b"\r\n").decode("utf-8", "replace") == texts[k]:
                found[k], k = n, k + 1
    return found


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# ---- typing -------------------------------------------------------------------

class _Typer:
    """Types each batch's columns by role; counts the bad values per column and remembers the first few."""

    def __init__(self, spec: DatasetSpec):
        self.spec = spec
        self.bad: dict[str, BadValues] = {}
        self.label_values: dict[str, int] = {}
        self.positive = set(_label_key(pd.Series([str(v) for v in spec.label_positive])))
        self.numbers = set(spec.numeric) | {c for c in (spec.outcomes.call_seconds, *spec.oracles) if c}

    def decode(self, batch: pa.RecordBatch, offset: int) -> pd.DataFrame:
        """A CSV batch (read as bytes) as pandas, decoded as UTF-8; a value that is not UTF-8 is recorded, then
        missing (Arrow's own decoding would fail the whole file, naming neither the column nor the row)."""
        columns = []
        for name, col in zip(batch.schema.names, batch.columns):
            if pa.types.is_binary(col.type):
                try:
                    col = col.cast(pa.string())
                except pa.ArrowInvalid:
                    raw = col.to_pylist()
                    text = [None if b is None else _utf8(b) for b in raw]
                    bad = pd.Series([t is None and b is not None for b, t in zip(raw, text)])
                    self._record(name, pd.Series(raw, dtype=object), bad, offset, UTF8)
                    col = pa.array(text, pa.string())
            columns.append(col)
        return pa.RecordBatch.from_arrays(columns, names=batch.schema.names).to_pandas()

    def apply(self, df: pd.DataFrame, offset: int) -> pd.DataFrame:
        sp = self.spec
        if sp.na_values:
            for col in df.columns:
                if not pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_datetime64_any_dtype(df[col]):
                    df[col] = df[col].mask(df[col].isin(sp.na_values))
        for col, kind in sp.dtypes.items():
            if kind != "string" and col not in self.numbers:  # e.g. categorical codes stored as 12.0
                x = self._number(df[col], col, kind, offset)
                df[col] = x.astype("Int64").astype("string") if kind in ("int", "bool") else x
        for col in self.numbers:
            df[col] = self._number(df[col], col, sp.dtypes.get(col, "float"), offset)
        for col in sp.categorical:
            if sp.dtypes.get(col) != "string":  # 'string': the values as written
                df[col] = category_text(df[col])
        if sp.time:
            df[sp.time] = self._time(df[sp.time], offset)
        df[sp.label] = self._label(df[sp.label], offset)
        return df

    def _record(self, col: str, s: pd.Series, bad: pd.Series, offset: int, expected: str,
                hint: str | None = None) -> None:
        rows = np.flatnonzero(bad.to_numpy(dtype=bool))
        if not len(rows):
            return
        entry = self.bad.setdefault(col, BadValues(expected, hint=hint))
        if entry.expected != expected:  # one kind of problem per column at a time (e.g. not UTF-8, then not a number)
            return
        entry.count += len(rows)
        for i in rows[:SHOWN_BAD - len(entry.rows)]:
            entry.rows.append(offset + int(i))
            entry.values.append(plain(s.iloc[i]))

    def _number(self, s: pd.Series, col: str, kind: str, offset: int) -> pd.Series:
        if not pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            s = s.mask(s.astype("string").str.strip().isin(CSV_NULLS))  # "" in a Parquet text column: missing
        if kind == "bool":
            if pd.api.types.is_bool_dtype(s):
                return s.astype("float64")
            words = s.astype("string").str.strip().str.lower()
            x = pd.Series(np.where(words.isin(TRUE_WORDS), 1.0, np.where(words.isin(FALSE_WORDS), 0.0, np.nan)),
                          index=s.index)
            self._record(col, s, x.isna() & s.notna(), offset, "true/false, yes/no or 1/0")
            return x
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s) and kind == "float":
            return s
        x = pd.to_numeric(s.astype("string").str.strip() if not pd.api.types.is_numeric_dtype(s) else s,
                          errors="coerce").astype("float64")
        bad = x.isna() & s.notna()
        if kind == "int":
            bad |= x.notna() & (x != np.round(x))
        self._record(col, s, bad, offset, "a whole number" if kind == "int" else "a number")
        return x.mask(bad)

    def _time(self, s: pd.Series, offset: int) -> pd.Series:
        """Naive UTC datetime64[ns]. Times are parsed at the resolution pandas picks (seconds to nanoseconds),
        so a time past the nanosecond range is seen, recorded and read as missing instead of overflowing."""
        fmt, col = self.spec.time_format, self.spec.time
        beyond = pd.Series(False, index=s.index)
        if pd.api.types.is_datetime64_any_dtype(s):
            parsed = s if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
        elif fmt in TIME_FORMATS_EPOCH:  # checked as numbers: pandas raises on an epoch past the range
            x = pd.to_numeric(s, errors="coerce")
            per_second = 1 if fmt == "unix_s" else 1000
            beyond = x.notna() & ~x.between(*(t.timestamp() * per_second for t in TIME_RANGE))
            parsed = pd.to_datetime(x.mask(beyond), unit="s" if fmt == "unix_s" else "ms", utc=True)
        else:
            parsed = pd.to_datetime(s, format=fmt or "ISO8601", utc=True, errors="coerce")
        beyond |= parsed.notna() & ~parsed.between(*(t.tz_localize("UTC") for t in TIME_RANGE))
        self._record(col, s, beyond, offset, IN_TIME_RANGE, OUT_OF_RANGE_HINT)
        self._record(col, s, parsed.isna() & s.notna() & ~beyond, offset,
                     f"a time in format {fmt}" if fmt else "an ISO 8601 time")
        return parsed.mask(beyond).dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")

    def _label(self, s: pd.Series, offset: int) -> pd.Series:
        """0/1 as nullable Int8 (missing or bad values stay missing; validate reports them)."""
        if self.positive:
            key = _label_key(s)
            y = pd.Series(np.where(key.isin(self.positive), 1, 0), index=s.index, dtype="Int8").mask(s.isna())
            for i, value in key[(y == 0).fillna(False).to_numpy()].drop_duplicates().items():
                if len(self.label_values) < 10:
                    self.label_values.setdefault(value, offset + s.index.get_loc(i))
            return y
        x = pd.to_numeric(s, errors="coerce") if not pd.api.types.is_bool_dtype(s) else s.astype("float64")
        ok = x.isin([0, 1])
        self._record(self.spec.label, s, s.notna() & ~ok, offset, "0/1")
        return x.where(ok).astype("Int8")


def category_text(s: pd.Series) -> pd.Series:
    """A categorical column as text in one vocabulary, whatever the file format: a number is written as
    the shortest text that reads back as it, without a trailing ``.0`` (Parquet float 1.0, int 1 and a
    CSV's "1.0" and "1" are all "1", so the same category is not split in two across files). Text that
    is not a decimal number with a point stays as written: codes keep their leading zeros ("007")."""
    if pd.api.types.is_bool_dtype(s):
        return s
    if pd.api.types.is_numeric_dtype(s):
        return _as_text(s)
    text = s if pd.api.types.is_string_dtype(s) else s.astype("str")
    dotted = text.str.contains(".", regex=False).fillna(False).to_numpy(dtype=bool)
    if not dotted.any():
        return text
    x = pd.to_numeric(text[dotted].str.strip(), errors="coerce")
    x = x[x.notna()]
    out = text.copy()
    out.loc[x.index] = _as_text(x)
    return out


def _as_text(x: pd.Series) -> pd.Series:
    """Numbers as category text, each distinct value written once (missing stays missing)."""
    codes, uniques = pd.factorize(x)
    words = np.array([_number_text(v) for v in uniques.tolist()] + [np.nan], dtype=object)
    return pd.Series(words[codes], index=x.index, dtype="str")  # code -1 (missing) takes the last word: NaN


def _number_text(v: int | float) -> str:
    if isinstance(v, int):  # int64 ids past 2**53 stay exact
        return str(v)
    return f"{v + 0.0:.0f}" if v == np.round(v) else repr(v)  # + 0.0: -0.0 is "0"


def _utf8(b: bytes) -> str | None:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return None


def plain(value: object) -> object:
    """A numpy scalar as the Python value it holds (so messages show 1.5, not np.float64(1.5))."""
    return value.item() if isinstance(value, np.generic) else value


def _label_key(s: pd.Series) -> pd.Series:
    """Label values as the strings label_positive is compared with (1.0 -> '1', ' Yes' -> 'Yes')."""
    text = s.astype("string").str.strip()
    x = pd.to_numeric(text, errors="coerce").astype("float64") if not pd.api.types.is_bool_dtype(s) else text
    if pd.api.types.is_bool_dtype(s) or (x.isna() != s.isna()).any():  # not all numbers: compare as text
        return text
    whole = bool((x.dropna() == np.round(x.dropna())).all())
    return (x.astype("Int64") if whole else x).astype("string")

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
times without an offset are taken as UTC); the label becomes 0/1 (through
``label_positive`` where the export says e.g. "Yes"/"No"); categorical, text
and stage columns keep their values; CSV text is decoded as UTF-8. A value
that cannot be typed is not raised here: it is recorded (how many per column,
and the first few with their rows) for :mod:`feature_store.validate`, which
reports every problem at once, and read as missing.

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


@dataclass
class BadValues:
    """Values of one column that could not be typed: how many, and the first few with their rows
    (``rows``: positions in the whole frame)."""

    expected: str
    count: int = 0
    rows: list[int] = field(default_factory=list)
    values: list[object] = field(default_factory=list)


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
    paths = spec.paths
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
    return Ingested(frame, fingerprint(spec, paths), sources, typer.bad, typer.label_values)


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
        reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                                parse_options=_parse_options(path, spec), convert_options=opts)
        yield from reader
    except pa.ArrowException as e:
        raise DataError(f"cannot read the file: {_first_line(e)}", file=str(path),
                        hint="check quoting and the number of fields per line") from None


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
        if sp.time:
            df[sp.time] = self._time(df[sp.time], offset)
        df[sp.label] = self._label(df[sp.label], offset)
        return df

    def _record(self, col: str, s: pd.Series, bad: pd.Series, offset: int, expected: str) -> None:
        rows = np.flatnonzero(bad.to_numpy(dtype=bool))
        if not len(rows):
            return
        entry = self.bad.setdefault(col, BadValues(expected))
        if entry.expected != expected:  # one kind of problem per column at a time (e.g. not UTF-8, then not a number)
            return
        entry.count += len(rows)
        for i in rows[:SHOWN_BAD - len(entry.rows)]:
            entry.rows.append(offset + int(i))
            entry.values.append(plain(s.iloc[i]))

    def _number(self, s: pd.Series, col: str, kind: str, offset: int) -> pd.Series:
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
        fmt = self.spec.time_format
        if pd.api.types.is_datetime64_any_dtype(s):
            parsed = s if getattr(s.dt, "tz", None) is not None else s.dt.tz_localize("UTC")
        elif fmt in TIME_FORMATS_EPOCH:
            unit = "s" if fmt == "unix_s" else "ms"
            parsed = pd.to_datetime(pd.to_numeric(s, errors="coerce"), unit=unit, utc=True)
        else:
            parsed = pd.to_datetime(s, format=fmt or "ISO8601", utc=True, errors="coerce")
        self._record(self.spec.time, s, parsed.isna() & s.notna(), offset,
                     f"a time in format {fmt}" if fmt else "an ISO 8601 time")
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None).astype("datetime64[ns]")

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

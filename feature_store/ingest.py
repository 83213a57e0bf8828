"""Reading a dataset's files into one frame, with errors that name file, column and row.

Only the columns the spec names are read (Parquet and CSV through pyarrow, so a
wide export is never loaded whole into pandas). Times are parsed with the
spec's ``time_format`` or as ISO 8601; timezone-aware times are converted to
UTC and stored naive.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import yaml

from feature_store.errors import DataError
from feature_store.spec import DatasetSpec
from feature_store.store import file_digest


def spec_columns(spec: DatasetSpec) -> list[str]:
    cols = [spec.id, spec.time, spec.label, *spec.features, spec.current_stage, *spec.outcomes.columns, spec.p_true]
    return list(dict.fromkeys(c for c in cols if c))


def _read_one(path: Path, columns: list[str]) -> pa.Table:
    if not path.is_file():
        raise DataError("data file not found", file=str(path))
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        available = pq.read_schema(path).names
        reader = lambda cols: pq.read_table(path, columns=cols)  # noqa: E731
    elif suffix in (".csv", ".gz", ".tsv"):
        opts = pacsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ",")
        available = pacsv.open_csv(path, parse_options=opts).schema.names
        reader = lambda cols: pacsv.read_csv(  # noqa: E731
            path, parse_options=opts, convert_options=pacsv.ConvertOptions(include_columns=cols))
    else:
        raise DataError(f"unsupported file type '{suffix}'", file=str(path), hint="use .parquet or .csv")
    missing = [c for c in columns if c not in available]
    if missing:
        raise DataError(f"column(s) named in the spec are missing from the data: {missing}", file=str(path),
                        column=missing[0], hint=f"available columns: {available[:20]}")
    return reader(columns)


def _parse_time(s: pd.Series, fmt: str | None, spec: DatasetSpec) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(s):
        parsed = s
    else:
        parsed = pd.to_datetime(s, format=fmt or "ISO8601", utc=True, errors="coerce")
        bad = parsed.isna() & s.notna()
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(f"cannot parse time value {s.iloc[row]!r}", file=spec.source, column=spec.time, row=row,
                            hint=f"set 'time_format' in the spec (now: {fmt or 'ISO 8601'})")
    if getattr(parsed.dt, "tz", None) is not None:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.astype("datetime64[ns]")


def read_frame(spec: DatasetSpec) -> tuple[pd.DataFrame, str]:
    """All rows of the spec's files, spec columns only, checked; plus the data fingerprint."""
    paths = spec.paths
    columns = spec_columns(spec)
    frame = pa.concat_tables([_read_one(p, columns) for p in paths], promote_options="permissive").to_pandas()
    if spec.time:
        frame[spec.time] = _parse_time(frame[spec.time], spec.time_format, spec)
        if frame[spec.time].isna().any():
            row = int(np.flatnonzero(frame[spec.time].isna().to_numpy())[0])
            raise DataError("missing time value", file=spec.source, column=spec.time, row=row)
    label = pd.to_numeric(frame[spec.label], errors="coerce")
    bad = ~label.isin([0, 1])
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(f"label must be 0/1, found {frame[spec.label].iloc[row]!r}", file=spec.source,
                        column=spec.label, row=row)
    frame[spec.label] = label.astype(np.int8)
    dup = frame[spec.id].duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"duplicate lead id {frame[spec.id].iloc[row]!r}", file=spec.source, column=spec.id, row=row)
    extra = yaml.safe_dump(spec.to_dict(), sort_keys=True).encode()
    return frame, file_digest(paths, extra)

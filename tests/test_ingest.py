"""Ingestion: a user's CSV/Parquet read in batches, typed by role, times to UTC, rows located per file."""

import numpy as np
import pandas as pd
import pytest
import yaml

from crm_export import export_frame, spec_dict, write_export
from feature_store import ingest
from feature_store.errors import DataError, SpecError
from feature_store.spec import DatasetSpec, load_spec
from feature_store.validate import check


def _read(tmp_path, df=None, spec=None):
    return ingest.read(load_spec(write_export(tmp_path, df, spec)))


def test_csv_export_is_typed_by_role_and_only_spec_columns_are_read(tmp_path):
    got = _read(tmp_path)
    df = got.frame
    assert "Owner Email" not in df and got.unused_columns == ["Owner Email"]
    assert df["Converted?"].dtype == "Int8" and set(df["Converted?"].unique()) == {0, 1}
    assert df["Age"].dtype == np.float64 and df["Age"].isna().sum() > 0  # '' -> missing
    assert set(df["Opt Out"].unique()) == {0.0, 1.0}  # dtypes: bool
    assert df["Lead Source"].isin(["web", "phone", "event", "partner"]).all()
    assert df["Notes"].isna().any() and df["Notes"].dropna().str.contains(" ").all()
    assert df["Lead ID"].iloc[0] == "L00000"  # ids and codes stay strings (leading zeros kept)


def test_times_with_offsets_become_naive_utc(tmp_path):
    df = export_frame(4)
    df["Created"] = ["2024-03-01T10:00:00+02:00", "2024-03-01T10:00:00Z", "2024-03-01 10:00:00-05:00",
                     "2024-03-01T10:00:00"]
    t = _read(tmp_path, df).frame["Created"]
    assert t.dtype == "datetime64[ns]"
    assert list(t.dt.hour) == [8, 10, 15, 10]  # no offset: taken as UTC


@pytest.mark.parametrize("fmt,values,hour", [("%d.%m.%Y %H:%M", ["01.03.2024 10:30"], 10),
                                             ("unix_ms", [1709287200000], 10), ("unix_s", [1709287200], 10)])
def test_explicit_time_formats(tmp_path, fmt, values, hour):
    df = export_frame(1)
    df["Created"] = values
    t = _read(tmp_path, df, dict(spec_dict(), time_format=fmt)).frame["Created"]
    assert t.iloc[0] == pd.Timestamp(2024, 3, 1, hour, 30 if fmt.startswith("%") else 0)


def test_csv_is_read_in_batches_and_a_late_bad_value_names_its_row(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "CSV_BLOCK_BYTES", 4096)
    df = export_frame(800).astype({"Web Visits": object})
    df.loc[700, "Web Visits"] = "seven"  # type inference on the first block would have said int64
    batches = []
    original = ingest._Typer.apply
    monkeypatch.setattr(ingest._Typer, "apply", lambda self, b, off: batches.append(off) or original(self, b, off))
    got = _read(tmp_path, df)
    assert len(batches) > 3 and len(got.frame) == 800
    bad = got.bad["Web Visits"]
    assert bad.values == ["seven"] and bad.count == 1 and got.locate(bad.rows[0]) == (str(tmp_path / "export.csv"), 701)


def test_parquet_files_are_read_per_batch_and_rows_are_located_per_file(tmp_path, monkeypatch):
    monkeypatch.setattr(ingest, "BATCH_ROWS", 50)
    df = export_frame(300)
    df["Age"] = pd.to_numeric(df["Age"]).astype("float64")
    df.iloc[:200].to_parquet(tmp_path / "a.parquet", index=False)
    part = df.iloc[200:].reset_index(drop=True)
    part.loc[9, "Created"] = "yesterday"
    part.to_parquet(tmp_path / "b.parquet", index=False)
    spec = DatasetSpec.from_dict(dict(spec_dict(), files=["*.parquet"]), base_dir=tmp_path, source="spec.yaml")
    got = ingest.read(spec)
    assert [s.rows for s in got.sources] == [200, 100]
    assert got.locate(got.bad["Created"].rows[0]) == (str(tmp_path / "b.parquet"), 10)


def test_label_positive_maps_values_and_an_unquoted_yaml_yes_is_refused(tmp_path):
    df = export_frame(10)
    df["Converted?"] = ["won", "lost"] * 5
    got = _read(tmp_path, df, dict(spec_dict(), label_positive="won"))
    assert list(got.frame["Converted?"]) == [1, 0] * 5
    df["Converted?"] = [1.0, 2.0] * 5  # numeric codes: 1 = bought
    assert list(_read(tmp_path, df, dict(spec_dict(), label_positive=1)).frame["Converted?"]) == [1, 0] * 5
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec_dict()).replace("'Yes'", "Yes"))
    with pytest.raises(SpecError, match='quote it'):
        load_spec(tmp_path / "spec.yaml")


def test_na_values_delimiter_and_dtype_fixes(tmp_path):
    df = export_frame(20).astype({"Web Visits": object})
    df.loc[3, "Web Visits"] = "-"
    df["Lead Source"] = [12.0, 7.0] * 10
    spec = dict(spec_dict(), na_values=["-"], delimiter=";", dtypes={"Opt Out": "bool", "Lead Source": "int"})
    (tmp_path / "export.csv").write_text(df.to_csv(index=False, sep=";"))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    got = ingest.read(load_spec(tmp_path / "spec.yaml"))
    assert np.isnan(got.frame.loc[3, "Web Visits"]) and "Web Visits" not in got.bad
    assert list(got.frame["Lead Source"][:2]) == ["12", "7"]


def test_a_semicolon_export_without_delimiter_gets_a_hint(tmp_path):
    (tmp_path / "export.csv").write_text(export_frame(5).to_csv(index=False, sep=";"))
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec_dict()))
    with pytest.raises(DataError, match="set 'delimiter'"):
        ingest.read(load_spec(tmp_path / "spec.yaml"))


def test_spec_refuses_bad_dtypes(tmp_path):
    for dtypes, msg in (({"Age": "string"}, "numeric feature"), ({"Notes": "int"}, "text column"),
                        ({"Age": "decimal"}, "dtypes.Age = \"decimal\": input should be 'string'"),
                        ({"Nope": "int"}, "does not use")):
        with pytest.raises(SpecError, match=msg):
            DatasetSpec.from_dict(dict(spec_dict(), dtypes=dtypes), source="spec.yaml")


def test_synthetic_worlds_load_unchanged_through_validation(tiny_splits):
    ds, splits = tiny_splits
    report = check(ds.spec)
    assert not report.errors and ds.warnings == tuple(map(str, report.warnings))
    assert all("positives in the test split" in w.message for w in report.warnings)  # tiny world: few positives
    assert ds.frame[ds.spec.label].dtype == np.int8 and len(splits.test) > 0


def _epoch_seconds(n: int) -> list[int]:
    return [1709287200 + 3600 * i for i in range(n)]


@pytest.mark.parametrize("fmt,values,count", [
    ("unix_s", _epoch_seconds(19) + [1709287200000], 1),  # one millisecond epoch among seconds
    ("unix_s", [1000 * t for t in _epoch_seconds(20)], 20),  # a column of milliseconds declared as seconds
    (None, ["2024-03-01T10:00:00Z"] * 19 + ["9999-12-31"], 1),  # the CRM sentinel for "no date"
    (None, ["2024-03-01T10:00:00Z"] * 19 + ["1500-01-01"], 1)])
def test_a_time_past_the_nanosecond_range_is_a_bad_value_of_its_row_not_a_crash(tmp_path, fmt, values, count):
    df = export_frame(20)
    df["Created"] = values
    got = _read(tmp_path, df, dict(spec_dict(), time_format=fmt) if fmt else None)
    bad = got.bad["Created"]
    assert bad.expected == "a time from 1677-09-21 to 2262-04-11" and bad.count == count
    assert got.locate(bad.rows[0])[1] == 21 - count and "unix_ms" in bad.hint
    assert got.frame["Created"].isna().sum() == count and got.frame["Created"].dtype == "datetime64[ns]"


def test_a_parquet_time_column_with_year_9999_is_a_bad_value_too(tmp_path):
    df = export_frame(20)
    df["Created"] = pd.Series(pd.date_range("2024-01-01", periods=20, freq="h", unit="us"))
    df.loc[3, "Created"] = pd.Timestamp("9999-12-31")
    df.astype({"Age": str}).to_parquet(tmp_path / "export.parquet", index=False)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec_dict("export.parquet")))
    got = ingest.read(load_spec(tmp_path / "spec.yaml"))
    assert got.bad["Created"].count == 1 and got.locate(got.bad["Created"].rows[0])[1] == 4


@pytest.mark.parametrize("values,expected", [
    (pd.Series([1.0, 0.0, -0.0, 2.5, np.nan]), ["1", "0", "0", "2.5", None]),  # Parquet float
    (pd.Series([1, 0, 2 ** 60]), ["1", "0", str(2 ** 60)]),  # Parquet int: exact past 2**53
    (pd.Series(["1.0", "1", "007", " 2.50", "a.b", None]), ["1", "1", "007", "2.5", "a.b", None])])  # CSV text
def test_categorical_numbers_are_one_vocabulary_in_every_format(values, expected):
    got = ingest.category_text(values)
    assert [None if pd.isna(v) else v for v in got] == expected

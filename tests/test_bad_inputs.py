"""The bad-input catalogue (docs/bad-inputs.md): each case, what a user sees, a test that fails if it changes.

Each case writes an export and a spec the way a user would, then looks at what `leadrank validate` reports
(``check``) and what `leadrank run` does before any job (``Dataset.load``): a SpecError or DataError of one
line, a warning and a run that goes on, or data that loads with a documented treatment. The catalogue
lists exactly these cases (checked below), plus the rows the runner owns, tested in tests/test_robustness.py.
"""

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from benchmark.cli import main
from crm_export import export_frame, spec_dict, write_export
from feature_store.errors import DataError, SpecError
from feature_store.spec import load_spec
from feature_store.store import Dataset
from feature_store.validate import check

N = 800  # leads of the default export; times grow with the row, so the last 240 rows are the test split
TRAIN, VALID, TEST = slice(0, 504), slice(504, 560), slice(560, N)


def export(tmp_path, rows=None, spec=None, frame=None) -> Path:
    """The default CRM export with ``rows`` (a function editing the frame in place) and spec keys changed."""
    df = export_frame() if frame is None else frame
    if rows:
        rows(df)
    return write_export(tmp_path, df, spec_dict() | (spec or {}))


def set_rows(column, where, value):
    def edit(df):
        df[column] = df[column].astype(object)
        df.iloc[where, df.columns.get_loc(column)] = value
    return edit


def header_only(kind, positive):
    def make(tmp_path):
        df = export_frame(5).iloc[:0]
        if positive is None:
            df = df.astype({"Converted?": "int64"})
        path = tmp_path / f"export.{kind}"
        df.to_parquet(path, index=False) if kind == "parquet" else df.to_csv(path, index=False)
        spec = spec_dict(path.name) | {"label_positive": positive}
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        return tmp_path / "spec.yaml"
    return make


def raw_bytes(edit):
    """An export whose bytes are then edited (encodings)."""
    def make(tmp_path):
        path = export(tmp_path)
        csv = tmp_path / "export.csv"
        csv.write_bytes(edit(csv.read_bytes()))
        return path
    return make


def spec_text(text):
    def make(tmp_path):
        export(tmp_path)
        (tmp_path / "spec.yaml").write_bytes(text.encode() if isinstance(text, str) else text)
        return tmp_path / "spec.yaml"
    return make


def with_spec(**keys):
    return lambda tmp_path: export(tmp_path, spec=keys)


# ---- what the user sees ---------------------------------------------------------------

def spec_error(fragment):
    """`validate` and `run` stop with one line before reading any data."""
    def see(path):
        with pytest.raises(SpecError) as e:
            load_spec(path)
        assert fragment in str(e.value) and "\n" not in str(e.value) and str(path) in str(e.value)
    return see


def error(fragment):
    """`validate` lists the error; `run` stops with it before any job."""
    def see(path):
        spec = load_spec(path)
        assert any(fragment in str(p) for p in check(spec).errors), [str(p) for p in check(spec).errors]
        with pytest.raises(DataError):
            Dataset.load(spec)
    return see


def warning(fragment, then=None):
    """`validate` warns; `run` goes on."""
    def see(path):
        report = check(load_spec(path))
        assert not report.errors and any(fragment in str(p) for p in report.warnings), \
            [str(p) for p in report.problems]
        if then:
            then(Dataset.load(load_spec(path)))
    return see


def loads(then):
    """`validate` says OK; the data loads with the documented treatment."""
    def see(path):
        report = check(load_spec(path))
        assert not report.errors, [str(p) for p in report.errors]
        then(Dataset.load(load_spec(path)), report)
    return see


def _oov_at_test(ds, _):
    s = ds.splits()
    j = s.test.schema.categorical.index("Lead Source")
    assert (s.test.cat[s.test.raw["Lead Source"] == "tiktok", j] == 0).all() and (s.train.cat[:, j] != 0).all()


def _infinite_as_missing(ds):
    s = ds.splits()
    assert np.isfinite(s.train.num).all() and "Web Visits__missing" in s.train.schema.numeric


def _row_number_ids(ds, report):
    assert "the row number (0-based, in file order) is the id" in report.summary()
    s = ds.splits()
    assert sorted(np.concatenate([s.train.ids, s.valid.ids, s.test.ids])) == list(range(N))


def _utc_times(ds, _):
    assert list(ds.frame["Created"].iloc[:2].dt.hour) == [7, 14]


def _empty_texts(ds, _):
    texts = ds.splits().train.texts["Notes"]
    assert "" in texts and all(isinstance(t, str) for t in texts)


def _long_text_whole(ds, _):
    s = ds.splits()
    assert max(len(t) for p in (s.train, s.valid, s.test) for t in p.texts["Notes"]) == len("word ") * 200_000


def _many_categories(tmp_path):
    """10^6 leads, each with its own email address as a categorical."""
    n = 1_000_000
    rng = np.random.default_rng(0)
    pd.DataFrame({"id": np.arange(n), "y": (rng.random(n) < 0.1).astype(np.int8),
                  "email": pd.Series(np.arange(n)).astype(str) + "@example.org",
                  "visits": rng.poisson(3, n)}).to_parquet(tmp_path / "big.parquet", index=False)
    spec = {"name": "big", "files": ["big.parquet"], "id": "id", "label": "y", "split": {"kind": "random"},
            "features": {"categorical": ["email"], "numeric": ["visits"]}}
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    return tmp_path / "spec.yaml"


def _one_time(df):
    df["Created"] = "2024-01-01T09:00:00Z"


def _mixed_zones(df):
    df.loc[:1, "Created"] = ["2024-01-01T09:00:00+02:00", "2024-01-01T09:00:00-05:00"]


def _new_source_in_test(df):
    df.loc[TEST.start:, "Lead Source"] = np.where(np.arange(N - TEST.start) % 3 == 0, "tiktok",
                                                  df.loc[TEST.start:, "Lead Source"])


def _inf_and_nan(df):
    df["Web Visits"] = df["Web Visits"].astype(float)
    df.loc[[5, 9], "Web Visits"] = [np.inf, -np.inf]
    df.loc[7, "Web Visits"] = np.nan


def _gift(df):
    """A column recorded after the outcome: a gift sent to every converted lead."""
    df["Gift"] = np.where(df["Converted?"] == "Yes", "mug", "none")


def _duplicate_header(df):
    df.columns = ["Region" if c == "Owner Email" else c for c in df.columns]


def _ragged(b: bytes) -> bytes:
    lines = b.split(b"\n")
    lines[4] += b",extra"
    lines[9] += b",x,y"
    return b"\n".join(lines)


def _read_once(ds):
    assert len(ds.frame) == N


def _history_in_parquet(tmp_path):
    """The older leads as a Parquet history whose 0/1 categorical is stored as float (0.0/1.0), the newer
    ones as a CSV export spelling it 0/1."""
    df = export_frame()
    df["Repeat Buyer"] = (np.arange(N) % 3 == 0).astype(int)
    old = df.iloc[:400].astype({"Repeat Buyer": float})
    old["Age"] = pd.to_numeric(old["Age"])
    old.to_parquet(tmp_path / "history.parquet", index=False)
    spec = spec_dict() | {"files": ["history.parquet", "export.csv"]}
    spec["features"] = spec["features"] | {"categorical": ["Lead Source", "Region", "Repeat Buyer"]}
    return write_export(tmp_path, df.iloc[400:], spec)


def _one_vocabulary(ds, _):
    s = ds.splits()
    j = s.train.schema.categorical.index("Repeat Buyer")
    assert s.train.schema.cardinalities["Repeat Buyer"] == 3  # "0", "1" and the unseen code
    assert (s.test.cat[:, j] != 0).all() and sorted(ds.frame["Repeat Buyer"].unique()) == ["0", "1"]


def _empty_numbers_in_parquet(tmp_path):
    df = export_frame().astype({"Age": str})  # numbers as text, "" where missing, as in the CSV export
    df.to_parquet(tmp_path / "export.parquet", index=False)
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec_dict("export.parquet")))
    return tmp_path / "spec.yaml"


def _empty_is_missing(ds, _):
    assert ds.frame["Age"].isna().sum() == (export_frame()["Age"] == "").sum() > 0


def table_shows(check_table, *sets):
    """`run` (logistic regression and LightGBM, with ``sets``) goes through; ``check_table`` reads Table 2."""
    def see(path):
        out = path.parent / "results"
        assert main(["run", "--dataset", str(path), "--methods", "logreg,lightgbm", "--out", str(out),
                     "--set", "eval.bootstrap=50", "--set", f"data_dir={path.parent / 'data'}",
                     *(x for kv in sets for x in ("--set", kv))]) == 0
        check_table((out / "table2.md").read_text())
    return see


def _constant_row_unmarked(table2):
    row = next(line for line in table2.splitlines() if line.startswith("| LightGBM"))
    assert "| 0.5000 [0.5000, 0.5000] |" in row and "†" not in row
    assert "- LightGBM *(not in paper)*: constant scores (every test lead scored the same)" in table2


def _yaml(edit):
    """The default spec as YAML text, edited as text (indentation and quoting mistakes)."""
    return spec_text(edit(yaml.safe_dump(spec_dict(), sort_keys=False)))


CASES = {
    # files
    "empty file (0 bytes)": (raw_bytes(lambda b: b""), error("the file is empty (0 bytes)")),
    "non-UTF-8 header": (raw_bytes(lambda b: b.replace(b"Owner Email", b"Owner \xe9mail", 1)),
                         error("the header line is not UTF-8 text")),
    "header-only CSV, 0/1 label": (header_only("csv", None), error("the data file(s) hold no rows, only a header")),
    "header-only CSV, Yes/No label": (header_only("csv", "Yes"), error("the data file(s) hold no rows, only a header")),
    "header-only Parquet, 0/1 label": (header_only("parquet", None),
                                       error("the data file(s) hold no rows, only a header")),
    "header-only Parquet, Yes/No label": (header_only("parquet", "Yes"),
                                          error("the data file(s) hold no rows, only a header")),
    # label and classes
    "single class: every lead converted": (
        lambda p: export(p, set_rows("Converted?", slice(None), "Yes")),
        error("'Converted?': the label has one class: all 800 leads are converted (1), so there is nothing to rank")),
    "single class: 0/1 label, no lead converted": (
        lambda p: export(p, set_rows("Converted?", slice(None), 0), {"label_positive": None}),
        error("the label has one class: all 800 leads are not converted (0)")),
    "label_positive spelt unlike the data": (with_spec(label_positive="yes"),
                                             error("label is not binary: besides label_positive ['yes'] it holds")),
    "label missing in several rows": (lambda p: export(p, set_rows("Converted?", [3, 8, 16], "")),
                                      error("'Converted?': missing label in 3 rows: rows 4, 9, 17")),
    "training split with no positives": (lambda p: export(p, set_rows("Converted?", TRAIN, "No")),
                                         error("the training split has no positives (0 of 504 leads positive)")),
    "test split with no positives": (lambda p: export(p, set_rows("Converted?", TEST, "No")),
                                     error("the test split has no positives (0 of 240 leads positive)")),
    "test split with no negatives": (lambda p: export(p, set_rows("Converted?", TEST, "Yes")),
                                     error("the test split has no negatives (240 of 240 leads positive)")),
    "validation slice with no positives": (lambda p: export(p, set_rows("Converted?", VALID, "No")),
                                           warning("the validation slice has no positives (0 of 56 leads positive)")),
    "every lead at the same time (temporal split)": (lambda p: export(p, _one_time),
                                                     error("all leads share the boundary time")),
    # values
    "NaN and ±inf in a numeric feature": (lambda p: export(p, _inf_and_nan), warning(
        "'Web Visits': infinite value (read as missing: the train median plus a missing flag) in 2 rows: "
        "row 6 (inf), row 10 (-inf)", then=_infinite_as_missing)),
    "a categorical with 10^6 distinct values": (_many_categories, warning(
        "'email': 1,000,000 of 1,000,000 leads have a value no other lead has (an id?)")),
    "unseen categories at test time": (lambda p: export(p, _new_source_in_test), loads(_oov_at_test)),
    "duplicate ids": (lambda p: export(p, set_rows("Lead ID", [39, 40], ["L00004", "L00009"])), error(
        "'Lead ID': duplicate lead id in 2 rows: row 40 ('L00004', first at row 5), "
        "row 41 ('L00009', first at row 10)")),
    "no id column": (lambda p: export(p, spec={"id": None}), loads(_row_number_ids)),
    "timestamps in mixed time zones": (lambda p: export(p, _mixed_zones), loads(_utc_times)),
    "empty transcript": (lambda p: export(p, set_rows("Notes", [1, 2], "")), loads(_empty_texts)),
    "non-UTF-8 transcript": (raw_bytes(lambda b: b.replace(b"Left a voicemail", b"Left a voicem\xe4il", 2)),
                             error("column 'Notes': not UTF-8 text in 2 rows: row ")),
    "200,000-token transcript": (lambda p: export(p, set_rows("Notes", [0], "word " * 200_000)),
                                 loads(_long_text_whole)),
    # the spec
    "spec naming a column twice": (lambda p: export(p, spec={"features": {"categorical": ["Region"],
                                                                          "numeric": ["Age", "Region"]}}),
                                   spec_error("column 'Region': listed twice, as categorical and numeric")),
    "dataset name that would write outside the results folder (spec)": (
        with_spec(name="../../elsewhere"), spec_error("name '../../elsewhere' is not a plain folder name")),
    "unknown spec key": (with_spec(lable="Converted?"), spec_error("unknown key 'lable' (did you mean 'label'?")),
    "unknown key under split": (with_spec(split={"tset_fraction": 0.2}),
                                spec_error("unknown key 'split.tset_fraction' (did you mean 'test_fraction'?")),
    "unknown key under outcomes": (with_spec(outcomes={"final": "Stage"}),
                                   spec_error("unknown key 'outcomes.final' (did you mean 'final_stage'?")),
    "mis-indented key": (_yaml(lambda t: t.replace("  numeric:", "numeric:").replace("  text:\n  - Notes\n", "")),
                         spec_error("'numeric' is not a top-level key: it belongs under 'features:'")),
    "value of the wrong type": (with_spec(split={"test_fraction": "30%"}),
                                spec_error('split.test_fraction = "30%": input should be a valid number')),
    "YAML syntax error": (_yaml(lambda t: t.replace("stage_order:", "stage_order: [")),
                          spec_error("not valid YAML: line ")),
    "unquoted Yes in label_positive": (_yaml(lambda t: t.replace("'Yes'", "Yes")), spec_error("quote it")),
    "spec file not UTF-8": (spec_text(b"name: caf\xe9\n"), spec_error("the spec is not UTF-8 text")),
    "label as a feature": (with_spec(features={"categorical": ["Converted?"]}),
                           spec_error("column 'Converted?': the label is listed as a categorical feature")),
    "post-outcome column as a feature": (
        with_spec(post_outcome=["Owner Email"], features={"categorical": ["Owner Email"]}),
        spec_error("column 'Owner Email': a post-outcome column is listed as a categorical feature; that would leak")),
    "post-outcome column as the current stage": (
        with_spec(post_outcome=["Stage"]),
        spec_error("column 'Stage': a post-outcome column cannot be the current stage")),
    # round two: real exports
    "time outside pandas' range (9999-12-31 sentinel)": (
        lambda p: export(p, set_rows("Created", [5, 9], "9999-12-31")),
        error("'Created': not a time from 1677-09-21 to 2262-04-11 in 2 rows: row 6 ('9999-12-31'), row 10")),
    "the same file matched twice": (lambda p: export(p, spec={"files": ["export.csv", "*.csv"]}), warning(
        "export.csv: matched by 2 entries of 'files' ('export.csv', '*.csv'): read once",
        then=_read_once)),
    "duplicate column names in a CSV header": (lambda p: export(p, _duplicate_header), error(
        "column 'Region': the header names this column 2 times (columns 5, 11 of 11), so which one the spec "
        "means is ambiguous")),
    "ids equal once spaces are stripped": (lambda p: export(p, set_rows("Lead ID", [0, 1], ["L00000 ", " L00000"])),
                                           error("'Lead ID', row 2: lead id equal to another one once the spaces "
                                                 "around it are stripped: ' L00000', as 'L00000 ' at row 1")),
    "a categorical stored as 0.0/1.0 in Parquet and 0/1 in CSV": (_history_in_parquet, loads(_one_vocabulary)),
    "scoring times far in the future": (lambda p: export(p, set_rows("Created", slice(750, N), "2099-01-01")),
                                        warning("'Created': scoring time in the future (after ")),
    "a method whose scores do not vary": (lambda p: export(p), table_shows(_constant_row_unmarked,
                                                                          "lightgbm.min_child_samples=10000")),
    "a column that leaks the label": (
        lambda p: export(p, _gift, {"features": spec_dict()["features"] | {"categorical": ["Lead Source", "Gift"]}}),
        warning("column 'Gift': on its own this column ranks leads with AUC 1.000")),
    "a CSV line with more fields than the header": (raw_bytes(_ragged), error(
        "2 line(s) have another number of fields than the header's 11: row 4 (line 5: 12 fields), "
        "row 9 (line 10: 13 fields)")),
    "empty string in a numeric Parquet column": (_empty_numbers_in_parquet, loads(_empty_is_missing)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input(case, tmp_path):
    make, see = CASES[case]
    see(make(tmp_path))


def test_the_catalogue_page_lists_exactly_these_cases():
    page = (Path(__file__).parents[1] / "docs" / "bad-inputs.md").read_text()
    rows = [line.split("|")[1:-1] for line in page.splitlines() if line.startswith("| ") and "---" not in line]
    listed = {re.sub(r"\*|`", "", cells[0]).strip(): cells for cells in rows[1:]}
    elsewhere = {name for name, cells in listed.items() if "tests/test_robustness.py" in "|".join(cells)}
    assert set(listed) - elsewhere == set(CASES) and len(elsewhere) == 4
    assert len(CASES) >= 20

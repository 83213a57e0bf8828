"""Validation: each user mistake gives one clear line (file, column, row, what to do) from both
`leadrank validate` and `leadrank run`, and a failed run leaves no result files behind."""

import numpy as np
import pandas as pd
import pytest

from benchmark.cli import main
from crm_export import export_frame, spec_dict, write_export


def _case(**edit):
    def apply(df, spec):
        for key, value in edit.items():
            spec[key] = value
        return df, spec
    return apply


def _set(column, rows, value, **spec_edit):
    def apply(df, spec):
        df = df.astype({column: object})
        df.loc[rows, column] = value
        spec.update(spec_edit)
        return df, spec
    return apply


def _newest_negative(df, spec):
    df.loc[int(len(df) * 0.6):, "Converted?"] = "No"
    return df, spec


def _rename(df, spec):
    return df.rename(columns={"Lead Source": "Source"}), spec


def _as_feature(column):
    def apply(df, spec):
        spec["features"]["categorical"].append(column)
        return df, spec
    return apply


def _with_outcome(df, spec):
    df["Final Stage"] = "lost"
    spec["outcomes"] = {"final_stage": "Final Stage", "final_stage_order": ["lost", "won"]}
    spec["features"]["categorical"].append("Final Stage")
    return df, spec


def _numbers_as_text(df, spec):
    df["Notes"] = np.arange(len(df)).astype(str)
    return df, spec


# (case, expected fragments of the message: column, row where one exists, what is wrong)
ERRORS = {
    "missing column": (_rename, ["'Lead Source'", "missing from the data", "'Lead Source' -> 'Source'?"]),
    "label not binary": (_set("Converted?", 16, "Maybe"), ["'Converted?'", "row 17", "not binary", "'Maybe'"]),
    "label 0/1 expected": (_case(label_positive=None), ["'Converted?'", "row 1", "not 0/1", "label_positive"]),
    "missing label": (_set("Converted?", 20, ""), ["'Converted?'", "row 21", "missing label"]),
    "label as feature": (_as_feature("Converted?"), ["'Converted?'", "the label", "leak"]),
    "outcome as feature": (_with_outcome, ["'Final Stage'", "outcome column", "leak"]),
    "duplicate id": (_set("Lead ID", 39, "L00004"), ["'Lead ID'", "row 40", "duplicate lead id: 'L00004'",
                                                     "first at row 5"]),
    "missing id": (_set("Lead ID", 8, ""), ["'Lead ID'", "row 9", "missing lead id"]),
    "unparsable time": (_set("Created", 32, "31/02/2024"), ["'Created'", "row 33", "'31/02/2024'", "time_format"]),
    "missing time": (_set("Created", 2, ""), ["'Created'", "row 3", "missing scoring time"]),
    "not a number": (_set("Age", 11, "forty"), ["'Age'", "row 12", "'forty'", "na_values"]),
    "all missing": (_set("Region", slice(None), ""), ["export.csv, column 'Region'", "every value is missing"]),
    "one-valued categorical": (_set("Lead Source", slice(None), "web"), ["export.csv, column 'Lead Source'", "one value ('web')"]),
    "unknown stage": (_set("Stage", 50, "Negotiation"), ["'Stage'", "row 51", "['Negotiation']", "stage_order"]),
    "missing labels": (_set("Converted?", [3, 8, 16], ""), ["'Converted?'", "missing label in 3 rows: rows 4, 9, 17"]),
    "labels not 0/1": (_case(label_positive=None), ["'Converted?'", "not 0/1 in 800 rows: row 1 ('Yes'), row 2 ('No'),",
                                                     "and 790 more", "label_positive"]),
    "one class": (_set("Converted?", slice(None), "No"), ["'Converted?'", "no row has a label value in "
                                                                          "label_positive ['Yes']"]),
    "text not text": (_numbers_as_text, ["'Notes'", "row 1", "only numbers", "not text"]),
    "bad bool": (_set("Opt Out", 7, "perhaps"), ["'Opt Out'", "row 8", "'perhaps'", "yes/no"]),
    "test has no positives": (_newest_negative, ["'Converted?'", "test split has no positives", "undefined"]),
}


@pytest.mark.parametrize("name", list(ERRORS))
def test_error_names_column_and_row_and_leaves_no_results(name, tmp_path, capsys):
    edit, fragments = ERRORS[name]
    df, spec = edit(export_frame(), spec_dict())
    path = write_export(tmp_path / "export", df, spec)
    out = tmp_path / "results"
    rc = main(["run", "--dataset", str(path), "--methods", "funnel_recency,logreg", "--out", str(out),
               "--set", f"data_dir={tmp_path / 'data'}", "--set", "eval.bootstrap=20"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err
    line = [x for x in err.splitlines() if x.startswith("error:")][-1]
    for fragment in fragments:
        assert fragment in line
    assert not out.exists() or not any(out.rglob("*"))
    assert main(["validate", str(path)]) == 2
    shown = capsys.readouterr()
    assert all(fragment in shown.out + shown.err for fragment in fragments)


def test_validate_lists_every_error_and_run_counts_them(tmp_path, capsys):
    df = export_frame().astype({"Age": object})
    df.loc[3, "Age"] = "n.a."
    df.loc[5, "Created"] = "soon"
    path = write_export(tmp_path, df)
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert "'Age', row 4" in out and "'Created', row 6" in out and "INVALID: 2 error(s)" in out
    assert main(["run", "--dataset", str(path), "--methods", "logreg", "--out", str(tmp_path / "r")]) == 2
    assert "1 more error(s): run `leadrank validate" in capsys.readouterr().err


def test_warnings_name_the_column_and_do_not_stop_validation(tmp_path, capsys):
    df = export_frame()
    rng = np.random.default_rng(1)
    df["Days To Close"] = np.where(df["Converted?"] == "Yes", rng.integers(1, 60, len(df)), np.nan)  # leaks
    df["Form Version"] = 3
    df["Fax"] = np.where(rng.random(len(df)) < 0.8, np.nan, rng.integers(100, 999, len(df)))
    spec = spec_dict()
    spec["features"]["numeric"] += ["Days To Close", "Form Version", "Fax"]
    assert main(["validate", str(write_export(tmp_path, df, spec))]) == 0
    out = capsys.readouterr().out
    warnings = [line for line in out.splitlines() if line.startswith("warning:")]
    by_column = {c: " | ".join(w for w in warnings if f"column '{c}'" in w)
                 for c in ("Days To Close", "Form Version", "Fax")}
    assert "AUC 1.000" in by_column["Days To Close"] and "leakage" in by_column["Days To Close"]
    assert "constant" in by_column["Form Version"]
    assert "77 % of values are missing" in by_column["Fax"]
    assert len(warnings) == 4 and "OK (4 warning(s))" in out  # + 'Days To Close' is 65 % missing


def test_few_test_positives_and_an_empty_validation_slice_are_warnings(tmp_path, capsys):
    df = export_frame()
    y = df["Converted?"].to_numpy().copy()
    y[int(len(df) * 0.6):] = "No"
    y[-5:] = "Yes"  # five positives, all in the test split
    df["Converted?"] = y
    assert main(["validate", str(write_export(tmp_path, df))]) == 0
    out = capsys.readouterr().out
    assert "validation slice has no positives" in out and "only 5 positives in the test split" in out


def test_parquet_types_are_checked_too(tmp_path):
    from feature_store.spec import DatasetSpec
    from feature_store.validate import check

    df = export_frame(200)
    df["Age"] = pd.to_numeric(df["Age"])
    df["Notes"] = np.arange(200)  # an int column listed as text
    df["p"] = np.where(np.arange(200) == 7, 1.5, 0.2)
    df.to_parquet(tmp_path / "export.parquet", index=False)
    spec = DatasetSpec.from_dict(dict(spec_dict("export.parquet"), p_true="p"), base_dir=tmp_path, source="spec")
    errors = [str(p) for p in check(spec).errors]
    assert any("'Notes', row 1: text column holds int64 values" in e for e in errors)
    assert any("'p', row 8: p_true is not a probability: 1.5" in e for e in errors)

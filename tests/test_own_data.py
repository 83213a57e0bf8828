"""A user's CRM export, end to end: `leadrank validate`, then `leadrank run --dataset spec.yaml`."""

import json
import os
import re

import pandas as pd
import pytest

from benchmark.cli import main
from crm_export import export_frame, spec_dict, write_export


def _run(path, out, tmp_path, methods="funnel_recency,logreg"):
    return main(["run", "--dataset", str(path), "--methods", methods, "--out", str(out),
                 "--set", "eval.bootstrap=50", "--set", f"data_dir={tmp_path / 'data'}"])


def test_a_crm_export_validates_and_runs_end_to_end(tmp_path, capsys):
    path = write_export(tmp_path / "export")
    assert main(["validate", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "leads: 800" in shown and "never read: Owner Email" in shown and "OK (0 warning(s))" in shown
    assert re.search(r"split: temporal \(by time\): train \d+ \(\d+ positive\), valid \d+ \(\d+ positive\), "
                     r"test 240 \(\d+ positive\)", shown)

    out = tmp_path / "results"
    assert _run(path, out, tmp_path) == 0
    for method in ("funnel_recency", "logreg"):
        rec = json.loads((out / f"runs/my-crm/{method}/seed0.json").read_text())
        assert rec["status"] == "ok" and rec["n_test"] == 240 and rec["dataset_info"]["has_text"]
    funnel = json.loads((out / "runs/my-crm/funnel_recency/seed0.json").read_text())
    assert funnel["metrics"]["auc"]["value"] > 0.6  # the stage drives conversion in this export
    scores = pd.read_parquet(out / "runs/my-crm/logreg/seed0.scores.parquet")
    assert scores["lead_id"].str.startswith("L").all() and len(scores) == 240
    table2 = (out / "table2.md").read_text()
    assert "## Table 2 — dataset `my-crm`\n" in table2
    assert re.search(r"\| Funnel\+Recency +\| 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", table2)
    assert re.search(r"\| Logistic regression \*\(not in paper\)\* +\| 0\.\d{4} \[", table2)


def test_an_export_without_time_text_or_stage_marks_rows_na_and_says_why(tmp_path, capsys):
    spec = spec_dict()
    for key in ("time", "current_stage", "stage_order"):
        del spec[key]
    del spec["features"]["text"]
    spec["split"] = {"kind": "random", "seed": 3}
    path = write_export(tmp_path / "export", export_frame(), spec)
    assert main(["validate", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "random stratified (seed 3)" in shown and "no current funnel stage: funnel rows" in shown
    out = tmp_path / "results"
    assert _run(path, out, tmp_path, "funnel_recency,logreg,oracle") == 0
    table1, table2 = (out / "table1.md").read_text(), (out / "table2.md").read_text()
    assert "## Table 2 — dataset `my-crm` (random split)" in table2
    assert re.search(r"\| Funnel\+Recency +\| n/a ", table2) and "n/a — Funnel+Recency: no current-stage column" in table2
    assert "n/a — Oracle (p_true): no p_true" in table2
    assert "Data: no text column: '+h_text' rows are n/a; no current funnel stage: funnel rows" in table2
    assert "Data: no text column" in table1
    assert "funnel_recency" not in table1 and "Logistic regression" in table1  # each method in its own tables


def test_the_guide_example_spec_is_valid_and_comments_every_field():
    from pathlib import Path

    import yaml

    from feature_store.spec import SECTIONS, DatasetSpec

    guide = (Path(__file__).parents[1] / "docs" / "own-data.md").read_text()
    text = re.search(r"```yaml\n(.*?)```", guide, re.S).group(1)
    spec = DatasetSpec.from_dict(yaml.safe_load(text), source="guide")
    assert spec.label_positive == ("Yes",) and spec.dtypes["Email Opt Out"] == "bool"
    assert spec.post_outcome == ("Order Amount", "Churn Date")
    keys = set(DatasetSpec.model_fields).union(*(section.model_fields for section in SECTIONS.values()))
    for name in sorted(keys):
        line = next((x for x in text.splitlines() if re.match(rf"\s*#?\s*{name}:", x)), None)
        assert line is not None and "#" in line, f"key '{name}' is not shown with a comment in the guide"


@pytest.mark.parametrize("umask", [0o022, 0o077], ids=["umask-022", "umask-077"])
def test_data_warnings_reach_the_result_and_the_table_and_files_follow_the_umask(tmp_path, umask):
    """A leaking column and scoring times in 2099 are warned about in each result's JSON and under the table,
    not only on screen; every file the run writes (results, scores, tables, plots) has the umask's mode."""
    df = export_frame()
    df["Gift"] = df["Converted?"].map({"Yes": "mug", "No": "none"})
    df.loc[760:, "Created"] = "2099-01-01T00:00:00Z"
    spec = spec_dict()
    spec["features"] = spec["features"] | {"categorical": ["Lead Source", "Region", "Gift"]}
    path = write_export(tmp_path / "export", df, spec)
    out = tmp_path / "results"
    old = os.umask(umask)
    try:
        assert main(["run", "--dataset", str(path), "--methods", "logreg", "--out", str(out), "--jobs", "1",
                     "--set", "eval.bootstrap=50", "--set", f"data_dir={tmp_path / 'data'}"]) == 0
    finally:
        os.umask(old)
    record = json.loads((out / "runs/my-crm/logreg/seed0.json").read_text())
    leak, future = "column 'Gift': on its own this column ranks leads with AUC 1.000", "scoring time in the future"
    assert any(leak in w for w in record["warnings"]) and any(future in w for w in record["warnings"])
    table2 = (out / "table2.md").read_text()
    assert f"- Data warning: file {path.parent / 'export.csv'}, {leak}" in table2
    assert re.search(r"- Data warning: file \S+export\.csv, column 'Created': scoring time in the future \(after "
                     r"[^)]+\) in 40 rows: row 761 \(2099-01-01 00:00:00\)", table2)
    written = [p for p in out.rglob("*") if p.is_file() and p.name != ".leadrank.lock"]
    assert {p.suffix for p in written} >= {".json", ".parquet", ".md", ".csv", ".png"}
    assert {oct(p.stat().st_mode & 0o777) for p in written} == {oct(0o666 & ~umask)}
    assert {oct(p.stat().st_mode & 0o777) for p in out.rglob("*") if p.is_dir()} <= {oct(0o777 & ~umask)}

"""Table 3, the positive control, and the LLM diagnostics footnote: rendered from constructed result files."""

import numpy as np
import pandas as pd
import pytest

from benchmark import tables
from benchmark.metrics import evaluate
from benchmark.results import RunRecord, write_run

TEXT = {"columns": ["age"], "stage": True, "text": "prompt"}
TABLE = {"columns": ["age"], "stage": True, "text": "none"}


def _write(out, method, y, scores, family, inputs, table="table3", dataset="textual", info=None):
    rec = RunRecord(dataset=dataset, method=method, seed=0, table=table, status="ok", family=family,
                    metrics={k: e.to_dict() for k, e in evaluate(y, scores, n_resamples=50).items()},
                    n_test=len(y), n_pos=int(y.sum()), config={"settings": {"eval": {"bootstrap": 200}}},
                    info={"inputs": inputs, **(info or {})})
    write_run(out, rec, pd.DataFrame({"lead_id": np.arange(len(y)), "score": scores, "label": y}))


@pytest.fixture(scope="module")
def control(tmp_path_factory):
    """A textual world where DeepFM + h_text clears the table-only ceiling and asLLR (Base) does not."""
    out = tmp_path_factory.mktemp("control")
    rng = np.random.default_rng(3)
    n = 3000
    y = (rng.random(n) < 0.1).astype(int)
    tokens = rng.integers(100, 400, n) + 40 * y
    table_part = rng.normal(size=n) + 1.0 * y
    rows = {"oracle": (table_part + 2.5 * y, "oracle", {"columns": [], "stage": False, "text": "none"}),
            "oracle_table": (table_part, "oracle", {"columns": [], "stage": False, "text": "none"}),
            "logreg": (table_part + 0.5 * rng.normal(size=n), "classical", TABLE),
            "deepfm+h_text": (table_part + 1.0 * y, "ctr", {**TABLE, "text": "h_text"}),
            "asllr_base": (tokens.astype(float), "llm", TEXT)}
    for method, (scores, family, inputs) in rows.items():
        info = None
        if family == "llm":
            info = {"diagnostics": {"loss_by_tenth": [0.7] * 10, "valid_auc": 0.6, "spearman_prompt_tokens": 1.0,
                                    "prompt_tokens_auc": float(evaluate(y, tokens, n_resamples=2)["auc"].value),
                                    "within_stage_auc": {"new": 0.52, "visited": 0.5},
                                    "within_stage_pairs": {"new": 100, "visited": 300}}}
        _write(out, method, y, scores, family, inputs, info=info)
    _write(out, "logreg", y, table_part, "classical", TABLE, table="table1", dataset="benchmark")
    tables.write_tables(out, with_plots=False)
    return out


def test_table3_compares_every_row_with_the_table_only_oracle(control):
    md = (control / "table3.md").read_text()
    assert md.startswith("## Table 3 — control: text-dominant world — dataset `textual`")
    assert "Δ vs table-only oracle [95% CI]" in md.splitlines()[2]
    csv = pd.read_csv(control / "table3.csv").set_index("method")
    assert csv.loc["oracle", "gain"] > 0.1 and np.isnan(csv.loc["oracle_table", "gain"])
    assert csv.loc["deepfm+h_text", "gain_ci_low"] > 0 and csv.loc["asllr_base", "gain_ci_high"] < 0
    # the paper rows that did not run are shown, like in Tables 1 and 2
    assert csv.loc["asllr_ce", "status"] == "not run" and csv.loc["deepfm", "status"] == "not run"
    assert "reference row, Oracle, table only (p_true_table)" in md


def test_the_footnote_states_the_control_and_names_the_text_reader_that_fails_it(control):
    md = (control / "table3.md").read_text()
    assert "every text reader (DeepFM + h_text, the LLM rows) is expected above the table-only ceiling" in md
    assert "Failing it: asLLR (Base) (Δ's CI not above 0)." in md


def test_an_llm_row_that_follows_prompt_length_is_flagged(control):
    md = (control / "table3.md").read_text()
    line = next(x for x in md.splitlines() if x.startswith("- Diagnostics, asLLR (Base)"))
    assert "Spearman with prompt tokens +1.00" in line and "within-stage AUC 0.505" in line
    assert "**Flagged:** its scores follow prompt length" in line and "near chance" in line


def test_table3_is_rendered_only_where_a_control_run_exists(control, tmp_path):
    assert tables.check_tables(control) == []
    out = tmp_path / "paper-only"
    _write(out, "logreg", np.r_[0, 1, 0, 1], np.r_[0.1, 0.9, 0.2, 0.8], "classical", TABLE, table="table1",
           dataset="benchmark")
    assert set(tables.render_all(out)) == {"table1.md", "table1.csv", "table2.md", "table2.csv", "significance.md"}


def test_a_failing_h_text_row_is_named_with_its_embedding(tmp_path):
    """DeepFM and DeepFM + h_text share a label; the footnote names the one that fails by its embedding."""
    rng = np.random.default_rng(4)
    y = (rng.random(2000) < 0.1).astype(int)
    table_part = rng.normal(size=len(y)) + 1.0 * y
    _write(tmp_path, "oracle", y, table_part + 2.5 * y, "oracle", {"columns": [], "stage": False, "text": "none"})
    _write(tmp_path, "oracle_table", y, table_part, "oracle", {"columns": [], "stage": False, "text": "none"})
    _write(tmp_path, "deepfm+h_text", y, table_part + 0.3 * rng.normal(size=len(y)), "ctr", {**TABLE, "text": "h_text"})
    tables.write_tables(tmp_path, with_plots=False)
    assert "Failing it: DeepFM +h_text (Δ's CI not above 0)." in (tmp_path / "table3.md").read_text()


def test_an_llm_result_without_diagnostics_says_they_were_not_recorded(tmp_path):
    rng = np.random.default_rng(5)
    y = (rng.random(1000) < 0.1).astype(int)
    _write(tmp_path, "oracle_table", y, rng.normal(size=len(y)) + y, "oracle", {"columns": [], "stage": False, "text": "none"})
    _write(tmp_path, "asllr_base", y, rng.normal(size=len(y)) + y, "llm", TEXT)
    tables.write_tables(tmp_path, with_plots=False)
    assert "Diagnostics, asLLR (Base): not recorded (the result predates them" in (tmp_path / "table3.md").read_text()

"""Result files, resume, tables and the CLI, end to end on tiny worlds."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import leadrank_api as api
from benchmark import results, runner, tables
from feature_store import files
from benchmark.cli import main
from benchmark.contract import contract_profile, tiny_entry
from feature_store.errors import ConfigError
from feature_store.schema import Inputs
from leadrank_api import Method, Params, register


@pytest.fixture(scope="module")
def run_out(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("results")
    profile = contract_profile(data_dir)
    entries = [tiny_entry("table1"), tiny_entry("table2")]
    runner.run(profile, out, methods=["logreg", "oracle", "funnel_recency"], datasets=entries, progress=False)
    tables.write_tables(out)
    return out, profile, entries


def test_result_files_follow_the_contract(run_out):
    out, _, _ = run_out
    rec = json.loads((out / "runs/tiny-industrial/logreg/seed0.json").read_text())
    assert set(rec["metrics"]) == {"auc", "p_at_0.1", "p_at_1.0", "r_at_5.0"}
    for m in rec["metrics"].values():
        assert set(m) == {"value", "ci_low", "ci_high"} and m["ci_low"] <= m["value"] <= m["ci_high"]
    assert rec["fingerprint"] and rec["provenance"]["packages"]["numpy"] and "git_commit" in rec["provenance"]
    assert set(rec["timings"]) >= {"fit_s", "score_s"}
    scores = pd.read_parquet(out / "runs/tiny-industrial/logreg/seed0.scores.parquet")
    assert list(scores.columns) == ["lead_id", "score", "label", "weight"] and len(scores) == rec["n_test"]
    sample = rec["dataset_info"]["test_sample"]  # the contract profile scores a case-control sample
    assert sample["design"] == "case-control" and sample["negatives"] == 500
    w = scores.groupby("label")["weight"].agg(["min", "max", "sum"])
    assert (w["min"] == w["max"]).all()  # uniform within a class
    assert w.loc[0, "sum"] == pytest.approx(sample["negatives_in_split"])
    assert w.loc[1, "sum"] == pytest.approx(sample["positives_in_split"])


def test_finished_jobs_are_skipped_and_force_recomputes(run_out):
    out, profile, entries = run_out
    assert runner.run(profile, out, methods=["logreg"], datasets=entries[:1], progress=False) == []
    again = runner.run(profile, out, methods=["oracle"], datasets=entries[:1], force=True, progress=False)
    assert [r.method for r in again] == ["oracle"]


class KnobParams(Params):
    weight: float = 1.0
    """How much the activity count weighs against recency."""


@pytest.fixture
def knob():
    """A plugin-like method with its own profile section, registered for one test."""
    @register(name="_knob", family="rule", tables=("table2",), params={"_knob": KnobParams},
              description="activity count x weight, then recency")
    class Knob(Method):
        def fit(self, train, valid):
            return self

        def score(self, test):
            return self.section("_knob").weight * np.nan_to_num(test.numeric("price_page_views")) \
                - np.nan_to_num(test.numeric("days_since_last_activity"))

        def inputs(self, schema):
            return Inputs(("days_since_last_activity", "price_page_views"))
    yield Knob
    api.unregister("_knob")


def test_a_changed_setting_reruns_its_job_and_says_why(tmp_path, data_dir, capsys, knob):
    entry = [tiny_entry("table2")]

    def printed() -> str:
        captured = capsys.readouterr()
        return captured.out + captured.err

    def run(*overrides: str) -> list[str]:
        done = runner.run(contract_profile(data_dir, overrides), tmp_path, methods=["logreg", "_knob"],
                          datasets=entry, progress=True, jobs=1)
        return sorted(r.method for r in done)
    assert run() == ["_knob", "logreg"]
    rec = results.read_run(results.json_path(tmp_path, "tiny-industrial", "logreg", 0))
    assert rec.config["method_settings"] == {"logreg": {"C_grid": [0.01, 0.1, 1.0], "max_iter": 2000}}
    assert rec.provenance["method_package"]["name"] == "leadrank-bench"
    capsys.readouterr()
    assert run() == []  # unchanged: every job reused
    assert "reused 2 finished job(s)" in printed()
    assert run("logreg.max_iter=500") == ["logreg"]  # a built-in method's setting
    assert "rerun tiny-industrial/logreg/seed0: logreg.max_iter 2000 → 500" in printed()
    assert run("logreg.max_iter=500", "_knob.weight=2.0") == ["_knob"]  # a plugin's own section
    said = printed()
    assert "rerun tiny-industrial/_knob/seed0: _knob.weight 1.0 → 2.0" in said and "reused 1 finished job(s)" in said
    knob_rec = results.read_run(results.json_path(tmp_path, "tiny-industrial", "_knob", 0))
    assert knob_rec.config["method_settings"] == {"_knob": {"weight": 2.0}}
    assert knob_rec.provenance["method_package"] == {}  # defined in a test, not by an installed package


def test_a_changed_variant_option_reruns_its_job_and_says_why(tmp_path, data_dir, capsys):
    """A profile-declared variant's options make the row what it is: changing one (here by --set on the
    profile's ``variants:``) redefines the variant and reruns its job."""
    variant = "variants._ceiling={base: oracle, options: {given: table}, tables: [table2], description: a ceiling}"

    def run(*overrides: str) -> list[str]:
        return [r.method for r in runner.run(contract_profile(data_dir, [variant, *overrides]), tmp_path,
                                             methods=["_ceiling"], datasets=[tiny_entry("table2")], progress=True)]
    try:
        assert run() == ["_ceiling"]
        rec = results.read_run(results.json_path(tmp_path, "tiny-industrial", "_ceiling", 0))
        assert rec.config["method_settings"] == {"options": {"given": "table"}}
        assert run() == []  # unchanged: reused
        capsys.readouterr()
        assert run("variants._ceiling.options.given=everything") == ["_ceiling"]
        assert 'rerun tiny-industrial/_ceiling/seed0: options.given "table" → "everything"' in "".join(capsys.readouterr())
    finally:
        api.unregister("_ceiling")


def test_the_resume_key_holds_the_options_of_built_in_variants_and_what_an_embedding_reads():
    dcn, dcnm = (runner.resolved_settings(api.get(name), {}) for name in ("dcn", "dcnm"))
    assert results.settings_change(dcn, dcnm) == 'options.model "DCN" → "DCNMix"'
    asllr = {"h_text": {"provider": "asllr"}}  # the fine-tuned ranker's vectors: they depend on llm and hpro
    row = runner.resolved_settings(api.get("dcn+h_text"), asllr)
    assert set(row) == {"ctr", "h_text", "llm", "hpro", "options"}
    changed = runner.resolved_settings(api.get("dcn+h_text"), asllr | {"llm": {"lora_rank": 8},
                                                                       "hpro": {"key_stage": "visit"}})
    assert results.settings_change(row, changed) == 'hpro.key_stage "test_drive" → "visit", llm.lora_rank 16 → 8'
    minilm = runner.resolved_settings(api.get("dcn+h_text"), {"llm": {"lora_rank": 8}})
    assert set(minilm) == {"ctr", "h_text", "options"}  # the default provider reads no llm section


def test_no_method_may_read_a_section_named_options():
    with pytest.raises(ConfigError, match="no profile section may be named 'options'"):
        register(name="_opts", family="rule", description="x", params={"options": KnobParams})(type("Opts", (Method,), {}))
    assert "_opts" not in api.registered()


def test_atomic_write_leaves_no_partial_file(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_text("old")

    def boom(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_write_bytes(target, b"new")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]


def test_interrupted_job_reruns_and_changed_data_reruns(run_out):
    out, profile, entries = run_out
    jp = results.json_path(out, "tiny-benchmark", "logreg", 0)
    jp.unlink()  # as if killed before the JSON (the completion marker) landed
    rec = runner.run(profile, out, methods=["logreg"], datasets=entries[:1], progress=False)
    assert [r.method for r in rec] == ["logreg"]
    record = results.read_run(jp)
    fp, sample, settings = record.fingerprint, record.dataset_info["test_sample"], record.config["method_settings"]

    def reason(fingerprint=fp, test_sample=sample):
        return results.rerun_reason(out, "tiny-benchmark", "logreg", 0, fingerprint, test_sample, settings)
    assert reason() == ""
    assert reason(fingerprint="another-fingerprint") == "the data changed"
    assert reason(test_sample=sample | {"negatives": 499}).startswith("the test sample changed")
    assert reason(test_sample=results.FULL_SAMPLE).startswith("the test sample changed")  # the whole split


def test_tables_show_every_paper_row_and_the_oracle_on_top(run_out):
    out, _, _ = run_out
    t1, t2 = (out / "table1.md").read_text(), (out / "table2.md").read_text()
    for row in ("W&D", "DeepFM", "xDeepFM", "DCN-M", "AutoInt", "asLLR (Base)", "asLLR + HPRO (Full)"):
        assert row in t1
    for row in ("Funnel+Recency", "Funnel+CTR (DeepFM, two-stage)", "asLLR (w/ HPRO)", "Relative lift"):
        assert row in t2
    assert "not run" in t1 and "Oracle (p_true)" in t1 and "Logistic regression *(not in paper)*" in t2
    csv = pd.read_csv(out / "table2.csv")
    assert (csv.loc[csv.method == "asllr_ce", "status"] == "not run").all()
    ok = csv[csv.status == "ok"]
    assert ok.loc[ok.method == "oracle", "auc"].iloc[0] >= ok.auc.max() - 1e-12


def test_tables_check_catches_a_one_digit_change(run_out):
    out, _, _ = run_out
    assert tables.check_tables(out) == []
    md = out / "table2.md"
    text = md.read_text()
    i = next(i for i, ch in enumerate(text) if ch.isdigit() and text[i - 2:i] == "0.")
    md.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
    assert main(["tables", "--results", str(out), "--check"]) == 1
    assert main(["tables", "--results", str(out)]) == 0
    assert main(["tables", "--results", str(out), "--check"]) == 0


def test_each_profile_writes_its_own_results_directory():
    """A standard run must not replace the committed quick results (same dataset names in both)."""
    from benchmark.cli import default_out

    assert default_out("quick") == Path("results")
    assert default_out("standard") == Path("results/standard") != default_out("paper")


def test_cli_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "spec.yaml"
    bad.write_text("name: x\nfiles: [a.csv]\nid: id\nlabel: y\nfeatures: {numeric: [y]}\n")
    assert main(["run", "--dataset", str(bad), "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "spec.yaml" in err and "'y'" in err


def test_cli_list_and_generate(tmp_path):
    exe = Path(sys.executable).parent / "leadrank"
    listed = subprocess.run([exe, "list"], capture_output=True, text=True, check=True).stdout
    assert "funnel_recency" in listed and "oracle" in listed
    gen = subprocess.run([exe, "generate", "--world", "industrial", "--leads", "300", "--seed", "1",
                          "--out", tmp_path / "w"], capture_output=True, text=True, check=True)
    assert "leads/s" in gen.stdout and (tmp_path / "w/spec.yaml").is_file()


def test_the_split_cache_follows_the_eval_settings(data_dir):
    """Within one process, changing eval.* gives another test sample, never the cached one."""
    from benchmark.runner import load_splits

    a = load_splits(tiny_entry("table1"), contract_profile(data_dir))[1].truth
    b = load_splits(tiny_entry("table1"), contract_profile(data_dir, ["eval.test_negatives=300"]))[1].truth
    c = load_splits(tiny_entry("table1"), contract_profile(data_dir, ["eval.subsample_seed=1"]))[1].truth
    assert int((a.label == 0).sum()) == 500 and int((b.label == 0).sum()) == 300
    assert not np.array_equal(a.ids, c.ids)

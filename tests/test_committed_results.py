"""The committed results/ must be what `leadrank tables` renders from the committed run files.

A reviewer trusts results/table*.md without training anything; this fails as soon as a
table, significance.md or a run file is edited by hand or left stale after a rerun."""

import json
from pathlib import Path

import pytest

import leadrank_api as api
from benchmark import curves, results, tables
from benchmark.profile import PROFILE_DIR, load_profile
from benchmark.runner import plan, resolved_settings
from links import broken_links

RESULTS = Path(__file__).resolve().parents[1] / "results"
RUNS = sorted(p.parent for p in RESULTS.glob("**/runs") if p.is_dir())
COMMITTED = [p for p in RUNS if p.parent.name != curves.FOLDER]  # a results folder with tables
CURVES = sorted(p for p in RESULTS.glob(f"**/{curves.FOLDER}") if p.is_dir())


def test_results_are_committed():
    assert RESULTS in COMMITTED, "results/runs/ (the quick profile's run) is missing"


@pytest.fixture
def a_plugin():
    """An installed plugin with rows in both tables, registered without ``in_paper``: it is no paper
    row, so a table without its results does not change."""
    @api.register(name="_installed_plugin", family="classical", tables=("table1", "table2"), description="plugin")
    class Plugin(api.Method):
        pass
    yield Plugin
    api.unregister("_installed_plugin")


@pytest.mark.parametrize("out", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_committed_tables_match_committed_runs(out, a_plugin):
    assert tables.check_tables(out) == []


@pytest.mark.parametrize("folder", CURVES, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_committed_curves_match_their_runs(folder):
    assert curves.check_curves(folder) == []


def test_quick_curves_are_committed():
    assert RESULTS / curves.FOLDER in CURVES, "results/curves/ (`leadrank curve`) is missing"


@pytest.mark.parametrize("out", RUNS, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_every_committed_score_file_has_its_sampling_weights(out):
    """Each scores file carries a weight per lead: 1.0 where the whole test split was scored, else the
    inverse sampling fraction of the lead's class, as its result JSON's test_sample records."""
    import numpy as np
    import pandas as pd

    for scores in sorted(out.glob("runs/*/*/seed*.scores.parquet")):
        df = pd.read_parquet(scores)
        sample = json.loads(scores.with_name(scores.name.replace(".scores.parquet", ".json")).read_text()
                            )["dataset_info"].get("test_sample", {"design": "full"})
        assert "weight" in df, scores
        if sample["design"] == "full":
            assert (df["weight"] == 1.0).all(), scores
        else:
            pos = df["label"] == 1
            assert np.allclose(df["weight"][pos], sample["positives_in_split"] / sample["positives"]), scores
            assert np.allclose(df["weight"][~pos], sample["negatives_in_split"] / sample["negatives"]), scores


@pytest.mark.parametrize("out", RUNS, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_every_committed_result_records_the_settings_todays_code_resolves_from_its_profile(out):
    """An unchanged rerun reuses every committed job: each record's ``config.method_settings`` is what
    ``resolved_settings`` gives today for the profile it recorded. A new setting, or a merge that keeps
    one record's settings beside another's scores, fails here instead of silently rerunning (or reusing)."""
    stale = []
    for path in sorted(out.glob("runs/*/*/seed*.json")):
        record = results.read_run(path)
        settings = record.config["settings"]
        api.register_variants(settings.get("variants"), str(PROFILE_DIR / f"{record.config['profile']}.yaml"))
        change = results.settings_change(record.config["method_settings"],
                                         resolved_settings(api.get(record.method), settings))
        if change:
            stale.append(f"{path.relative_to(RESULTS.parent)}: {change}")
    assert stale == []


def test_the_standard_tables_have_every_row_on_a_case_control_sample_of_500_positives():
    """The standard profile's evidence (issue 15): every job of both tables ran (none failed, none
    missing), the LLM rows trained on >= 1,000 leads, and every row was scored on the same test leads,
    a case-control sample with >= 500 positives."""
    out = RESULTS / "standard"
    missing, failed, samples = [], [], {}
    for job in plan(load_profile("standard")):
        path = out / "runs" / job.entry.name / job.method / f"seed{job.seed}.json"
        if not path.is_file():
            missing.append(str(path.relative_to(out)))
            continue
        record = json.loads(path.read_text())
        if record["status"] != "ok":
            failed.append(f"{job.method}: {record.get('reason')}")
            continue
        sample = json.dumps(record["dataset_info"]["test_sample"], sort_keys=True)
        samples.setdefault(job.entry.name, set()).add(sample)
        assert record["n_pos"] >= 500, path
        if record["family"] == "llm":
            assert record["info"]["train_leads"] >= 1000, path
    assert not missing and not failed, (missing, failed)
    assert all(len(s) == 1 for s in samples.values()), samples  # one test sample per dataset
    assert all(json.loads(next(iter(s)))["design"] == "case-control" for s in samples.values())


@pytest.mark.parametrize("out", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_every_link_of_a_committed_table_points_at_a_committed_file(out):
    for table in sorted(out.glob("*.md")):
        assert broken_links(table) == [], table.relative_to(RESULTS.parent)


def test_the_quick_results_are_what_run_all_would_reuse_on_three_seeds():
    """`./run_all.sh --seeds 0,1,2` on a fresh clone reuses every committed quick job: each job of the
    quick profile ran (none failed), with the settings today's quick profile resolves, and every row of
    a dataset was scored on one test sample (the case-control sample of the profile's eval section)."""
    profile = load_profile("quick")
    stale, samples = [], {}
    for job in plan(profile, seeds=[0, 1, 2]):
        path = RESULTS / "runs" / job.entry.name / job.method / f"seed{job.seed}.json"
        if not path.is_file():
            stale.append(f"{path.relative_to(RESULTS)}: missing")
            continue
        record = results.read_run(path)
        change = results.settings_change(record.config["method_settings"],
                                         resolved_settings(api.get(job.method), profile.config))
        if record.status != "ok" or change:
            stale.append(f"{path.relative_to(RESULTS)}: {record.status} {change}")
        samples.setdefault(job.entry.name, set()).add(json.dumps(record.dataset_info["test_sample"], sort_keys=True))
    assert stale == []
    assert all(len(s) == 1 for s in samples.values()), samples


def test_the_quick_control_passes_every_text_reader_above_the_table_only_ceiling():
    """Table 3's claim on the committed quick run: on the text-dominant world every row that reads the
    transcripts (the LLM rows, DeepFM + h_text) ranks above the table-only oracle (mean over seeds), and
    the table-only rows do not. A fine-tune that stops learning what the prompts say fails here."""
    auc = {}
    for path in (RESULTS / "runs" / "textual").glob("*/seed*.json"):
        record = results.read_run(path)
        auc.setdefault(record.method, []).append(record.metrics["auc"]["value"])
    ceiling = sum(auc.pop("oracle_table")) / 3
    readers = {m for m in auc if m.startswith("asllr") or m.endswith("+h_text")}
    assert readers >= {"asllr_base", "asllr_ce", "asllr_hpro", "deepfm+h_text"}
    for m, values in auc.items():
        assert len(values) == 3, m
        if m in readers:
            assert sum(values) / 3 > ceiling, (m, values, ceiling)
        elif m in ("logreg", "lightgbm", "deepfm"):
            assert sum(values) / 3 < ceiling, (m, values, ceiling)


DIAGNOSTICS = ("loss_by_tenth", "valid_auc", "spearman_prompt_tokens", "within_stage_auc")  # the four


def test_every_committed_llm_result_records_what_it_learned():
    """Issue 25: every LLM result that ran carries ``info.diagnostics`` (training loss by tenth, validation
    AUC, Spearman with prompt length, within-stage AUC), so a reader can tell a ranker from a length
    counter."""
    missing = set()
    for path in sorted(RESULTS.glob("**/runs/*/*/seed*.json")):
        record = results.read_run(path)
        if record.family != "llm" or record.status != "ok":
            continue
        if not set(DIAGNOSTICS) <= set(record.info.get("diagnostics") or {}):
            missing.add(str(path.relative_to(RESULTS)))
    assert missing == set(), "LLM results without diagnostics: rerun them"

"""Paired significance: DeLong against a published example and brute force, bootstrap coverage,
and the † marks / significance.md that the tables carry."""

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark import significance, tables
from benchmark.metrics import bootstrap, evaluate
from benchmark.results import RunRecord, write_run
from benchmark.significance import bootstrap_p, choose_reference, delong, delong_test

# Hanley & McNeil (1982), Radiology 143:29-36: a reviewer rated 109 CT images on a
# 5-point scale (1 = definitely normal ... 5 = definitely abnormal).
HANLEY_NORMAL = (33, 6, 6, 11, 2)
HANLEY_ABNORMAL = (3, 2, 2, 11, 33)
# Stata's `roctab disease rating` on these data (DeLong standard error; Stata [R] roctab, example 1).
STATA_AREA, STATA_SE, STATA_CI = 0.8932, 0.0307, (0.83295, 0.95339)

# DeLong, DeLong & Clarke-Pearson (1988): 43 ovarian-cancer patients with complete data,
# as listed in SAS/STAT's PROC LOGISTIC example "Comparing Receiver Operating Characteristic
# Curves": albumin, total protein, K-G score (used as 10 - score), outcome.
DELONG_1988 = """
3.0 5.8 10 0   3.2 6.3  5 1   3.9 6.8  3 1   2.8 4.8  6 0   3.2 5.8  3 1   0.9 4.0  5 0
2.5 5.7  8 0   1.6 5.6  5 1   3.8 5.7  5 1   3.7 6.7  6 1   3.2 5.4  4 1   3.8 6.6  6 1
4.1 6.6  5 1   3.6 5.7  5 1   4.3 7.0  4 1   3.6 6.7  4 0   2.3 4.4  6 1   4.2 7.6  4 0
4.0 6.6  6 0   3.5 5.8  6 1   3.8 6.8  7 1   3.0 4.7  8 0   4.5 7.4  5 1   3.7 7.4  5 1
3.1 6.6  6 1   4.1 8.2  6 1   4.3 7.0  5 1   4.3 6.5  4 1   3.2 5.1  5 1   2.6 4.7  6 1
3.3 6.8  6 0   1.7 4.0  7 0   3.7 6.1  5 1   3.3 6.3  7 1   4.2 7.7  6 1   3.5 6.2  5 1
2.9 5.7  9 0   2.1 4.8  7 1   2.8 6.2  8 0   4.0 7.0  7 1   3.3 5.7  6 1   3.7 6.9  5 1
3.6 6.6  5 1
"""


def brute_force(y, score_sets):
    """DeLong et al. (1988) from the definition: the Heaviside kernel over every (positive, negative) pair."""
    pos, neg = y == 1, y == 0
    m, n = pos.sum(), neg.sum()
    v10, v01 = [], []
    for s in score_sets:
        x, z = s[pos][:, None], s[neg][None, :]
        psi = (x > z) + 0.5 * (x == z)
        v10.append(psi.sum(axis=1) / n)
        v01.append(psi.sum(axis=0) / m)
    v10, v01 = np.array(v10), np.array(v01)
    auc = v10.mean(axis=1)
    c10, c01 = v10 - auc[:, None], v01 - auc[:, None]
    return auc, c10 @ c10.T / ((m - 1) * m) + c01 @ c01.T / ((n - 1) * n)


def test_delong_matches_the_published_hanley_mcneil_example():
    y = np.repeat([0, 1], [sum(HANLEY_NORMAL), sum(HANLEY_ABNORMAL)])
    rating = np.r_[np.repeat(np.arange(1, 6), HANLEY_NORMAL), np.repeat(np.arange(1, 6), HANLEY_ABNORMAL)]
    auc, cov = delong(y, [rating])
    se = np.sqrt(cov[0, 0])
    assert auc[0] == pytest.approx(STATA_AREA, abs=5e-5) and se == pytest.approx(STATA_SE, abs=5e-5)
    z = stats.norm.ppf(0.975)
    assert (auc[0] - z * se, auc[0] + z * se) == pytest.approx(STATA_CI, abs=5e-6)
    bf_auc, bf_cov = brute_force(y, [rating.astype(float)])
    assert auc == pytest.approx(bf_auc, rel=1e-12) and cov == pytest.approx(bf_cov, rel=1e-10)


def test_paired_delong_matches_brute_force_on_delong_1988_data():
    alb, tp, kg, outcome = np.array(DELONG_1988.split(), dtype=float).reshape(-1, 4).T
    y, sets = outcome.astype(int), [10 - kg, alb, tp]
    assert len(y) == 43 and y.sum() == 31
    auc, cov = delong(y, sets)
    bf_auc, bf_cov = brute_force(y, sets)
    np.testing.assert_allclose(auc, bf_auc, rtol=1e-12)
    np.testing.assert_allclose(cov, bf_cov, rtol=1e-10)
    for i, j in ((0, 1), (0, 2), (1, 2)):
        t = delong_test(y, sets[i], sets[j])
        bf_z = (bf_auc[i] - bf_auc[j]) / np.sqrt(bf_cov[i, i] + bf_cov[j, j] - 2 * bf_cov[i, j])
        assert t.diff == pytest.approx(bf_auc[i] - bf_auc[j], abs=1e-12)
        assert t.p == pytest.approx(2 * stats.norm.sf(abs(bf_z)), rel=1e-9)


def test_delong_matches_brute_force_with_heavy_ties():
    rng = np.random.default_rng(3)
    y = (rng.random(400) < 0.2).astype(int)
    a, b = np.round(rng.normal(size=400) + y, 1), np.round(rng.normal(size=400) + 0.5 * y)
    auc, cov = delong(y, [a, b])
    bf_auc, bf_cov = brute_force(y, [a, b])
    np.testing.assert_allclose(auc, bf_auc, rtol=1e-12)
    np.testing.assert_allclose(cov, bf_cov, rtol=1e-10, atol=1e-15)


def test_identical_scores_give_p_one():
    rng = np.random.default_rng(4)
    y = (rng.random(1000) < 0.05).astype(int)
    s = rng.normal(size=1000) + y
    t = delong_test(y, s, s.copy())
    assert t.diff == 0 and t.p == 1.0 and not t.significant
    boots = bootstrap(y, [s, s.copy()], ("p_at_1.0", "r_at_5.0"), n_resamples=100, seed=0)
    assert all(bootstrap_p(v[1] - v[0]) == 1.0 for v in boots.values())


def test_a_clearly_better_scorer_is_significant_both_ways():
    rng = np.random.default_rng(5)
    y = (rng.random(3000) < 0.05).astype(int)
    good, weak = rng.normal(size=3000) + 2.0 * y, rng.normal(size=3000) + 0.5 * y
    assert delong_test(y, good, weak).p < 1e-6
    boots = bootstrap(y, [good, weak], ("r_at_5.0",), n_resamples=200, seed=0)["r_at_5.0"]
    assert bootstrap_p(boots[0] - boots[1]) < 0.05


def test_cis_cover_a_known_auc_at_about_the_nominal_rate():
    """200 simulated test sets from a binormal model whose population AUC is known exactly:
    the stratified-bootstrap CI of the tables (and DeLong's) cover it about 95 % of the time,
    and DeLong's test of two equally good scorers rejects about 5 % of the time. The labels
    are fixed, so one call scores all 200 sets on the same resamples."""
    true_auc, n_pos, n_neg, sets = 0.8, 60, 540, 200
    shift = np.sqrt(2) * stats.norm.ppf(true_auc)  # AUC = Phi(shift / sqrt 2)
    y = np.repeat([1, 0], [n_pos, n_neg])
    a, b = np.random.default_rng(6).normal(size=(2, sets, n_pos + n_neg)) + shift * y
    boots = bootstrap(y, list(a), ("auc",), n_resamples=200, seed=0)["auc"]
    lo, hi = np.percentile(boots, [2.5, 97.5], axis=1)
    auc, cov = delong(y, np.vstack([a, b]))
    half = stats.norm.ppf(0.975) * np.sqrt(np.diag(cov)[:sets])
    assert 0.9 <= np.mean((lo <= true_auc) & (true_auc <= hi)) <= 0.99
    assert 0.9 <= np.mean(np.abs(auc[:sets] - true_auc) <= half) <= 0.99
    rejections = np.mean([delong_test(y, a[i], b[i]).significant for i in range(sets)])
    assert rejections <= 0.1


def test_reference_choice_and_fallbacks():
    ctr = ("wdl", "deepfm", "dcn")
    assert choose_reference({"wdl": 0.7, "deepfm": 0.75, "logreg": 0.9}, ctr, "CTR")[0] == "deepfm"
    ref, note = choose_reference({"logreg": 0.7, "funnel_recency": 0.72, "oracle": 0.9}, ("asllr_ce",), "asLLR")
    assert ref == "funnel_recency" and "fallback" in note
    assert choose_reference({"oracle": 0.9}, ("asllr_ce",), "asLLR")[0] is None


# --- the tables: synthetic result files with known differences -------------------------

def _write(out, dataset, table, method, y, scores, family="classical"):
    rec = RunRecord(dataset=dataset, method=method, seed=0, table=table, status="ok", family=family,
                    metrics={k: e.to_dict() for k, e in evaluate(y, scores, n_resamples=50).items()},
                    n_test=len(y), n_pos=int(y.sum()), config={"settings": {"eval": {"bootstrap": 200}}})
    write_run(out, rec, pd.DataFrame({"lead_id": np.arange(len(y)), "score": scores, "label": y}))


@pytest.fixture(scope="module")
def sig_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("sig")
    rng = np.random.default_rng(7)
    y = (rng.random(2500) < 0.05).astype(int)
    ref = rng.normal(size=2500) + 1.0 * y
    t2 = {"asllr_ce": ref, "asllr_hpro": rng.normal(size=2500) + 2.5 * y, "funnel_recency": ref.copy(),
          "logreg": ref + 0.05 * rng.normal(size=2500), "oracle": rng.normal(size=2500) + 3.0 * y}
    for m, s in t2.items():
        _write(out, "ind", "table2", m, y, s)
    t1 = {"wdl": ref, "deepfm": ref + 0.3 * y, "deepfm+h_text": ref + 0.8 * y, "logreg": ref - 0.2 * y}
    for m, s in t1.items():
        _write(out, "bench", "table1", m, y, s)
    _write(out, "bench-no-ctr", "table1", "logreg", y, ref)
    _write(out, "bench-no-ctr", "table1", "oracle", y, ref + 2.0 * y)
    tables.write_tables(out, with_plots=False)  # plots: tests/test_plots.py
    return out


def _md_cells(md: str, dataset: str) -> dict[str, list[str]]:
    """Row label -> cells of one dataset's table in a rendered Markdown file."""
    part = md.split(f"dataset `{dataset}`", 1)[-1].split("\n## ", 1)[0]
    rows = [line.strip().strip("|").split("|") for line in part.splitlines() if line.startswith("| ")]
    return {r[0].strip(): [c.strip() for c in r[1:]] for r in rows[1:]}


def test_dagger_marks_exactly_the_significant_cells(sig_out):
    csv = pd.read_csv(sig_out / "table2.csv")
    cells = _md_cells((sig_out / "table2.md").read_text(), "ind")
    keys = tables.LAYOUT["table2"]
    marked = unmarked = 0
    for _, row in csv[csv.status == "ok"].iterrows():
        for i, k in enumerate(keys):
            p, adjusted = row.get(f"{k}_p"), row.get(f"{k}_p_holm")
            has = significance.MARK in cells[row["row"]][i]
            assert has == (pd.notna(adjusted) and adjusted < 0.05), (row["row"], k, adjusted)
            assert pd.isna(p) or adjusted >= p  # Holm never lowers a p-value
            marked += has
            unmarked += not has
    assert marked and unmarked
    p_cols = csv.set_index("method")
    assert p_cols.loc["asllr_hpro", "auc_p"] < 0.05 and p_cols.loc["funnel_recency", "auc_p"] == 1.0
    assert pd.isna(p_cols.loc["asllr_ce", "auc_p"])  # the reference is not tested against itself


def test_significance_md_lists_every_row_and_every_p_value(sig_out):
    sig = (sig_out / "significance.md").read_text()
    for table, dataset in (("table1", "bench"), ("table2", "ind"), ("table1", "bench-no-ctr")):
        section = sig.split(f"dataset `{dataset}`", 1)[1].split("\n## ", 1)[0]
        csv = pd.read_csv(sig_out / f"{table}.csv")
        listed = _md_cells(section, "")
        keys = tables.LAYOUT[table]
        for _, row in csv[(csv.dataset == dataset) & ~csv.row.str.startswith("Relative lift")].iterrows():
            h_text = table == "table1" and row["embedding"] != "-"
            cells = listed[row["row"] + (f" ({row['embedding']})" if h_text else "")]  # every row is listed
            for i, k in enumerate(keys):
                p, adjusted = row[f"{k}_p"], row[f"{k}_p_holm"]
                if pd.notna(p):
                    raw, holm = cells[3 * i + 1], cells[3 * i + 2]
                    assert float(raw) == pytest.approx(p, rel=5e-3, abs=1e-6)
                    assert float(holm.removesuffix(significance.MARK)) == pytest.approx(adjusted, rel=5e-3, abs=1e-6)
                    assert holm.endswith(significance.MARK) == (adjusted < 0.05)
    assert "Reference: DeepFM (the best CTR model without h_text, best AUC of the 2 that ran)" in sig
    no_ctr = sig.split("dataset `bench-no-ctr`", 1)[1]
    assert "Reference: Logistic regression" in no_ctr and "fallback" in no_ctr
    t1 = (sig_out / "table1.md").read_text()
    assert "reference row, DeepFM," in t1 and "[significance.md](significance.md)" in t1


def test_holm_adjusts_over_every_test_of_a_table():
    comparison = significance.Comparison("ref", "", {
        "a": {"auc": significance.Test(0.8, 0.7, 0.01), "p_at_1.0": significance.Test(0.2, 0.1, 0.04)},
        "b": {"auc": significance.Test(0.75, 0.7, 0.03), "p_at_1.0": significance.Test(0.1, 0.1, float("nan"))}})
    tests = significance.holm(comparison).tests
    # three defined p-values: 0.01 * 3, then max(0.03 * 2, 0.03), then max(0.04 * 1, 0.06)
    assert [tests["a"]["auc"].p_holm, tests["b"]["auc"].p_holm, tests["a"]["p_at_1.0"].p_holm] == \
        pytest.approx([0.03, 0.06, 0.06])
    assert tests["a"]["auc"].significant and not tests["b"]["auc"].significant
    assert np.isnan(tests["b"]["p_at_1.0"].p_holm) and not tests["b"]["p_at_1.0"].significant


def test_check_covers_significance_md(sig_out):
    assert tables.check_tables(sig_out) == []
    path = sig_out / "significance.md"
    text = path.read_text()
    path.write_text(text.replace("0.", "1.", 1))
    assert tables.check_tables(sig_out) == [str(path)]
    path.write_text(text)


def test_a_row_whose_scores_do_not_vary_is_never_tested_nor_the_reference(tmp_path):
    rng = np.random.default_rng(3)
    y = (rng.random(600) < 0.2).astype(int)
    runs = {"asllr_ce": np.full(600, 0.3), "logreg": rng.normal(size=600) + 1.5 * y,
            "funnel_recency": rng.normal(size=600) + 0.2 * y, "lightgbm": np.full(600, -1.0)}
    for m, s in runs.items():
        _write(tmp_path, "small", "table2", m, y, s)
    tables.write_tables(tmp_path, with_plots=False)
    csv = pd.read_csv(tmp_path / "table2.csv").set_index("method")
    cells = _md_cells((tmp_path / "table2.md").read_text(), "small")
    for method, label in (("asllr_ce", "asLLR (w/o HPRO)"), ("lightgbm", "LightGBM *(not in paper)*")):
        assert csv.loc[method, ["auc_p", "auc_p_holm", "p_at_1.0_p"]].isna().all()
        assert cells[label][0] == "0.5000 [0.5000, 0.5000]"  # no mark, although logreg is far better
        assert f"- {label}: constant scores (every test lead scored the same)" in (tmp_path / "table2.md").read_text()
    assert csv.loc["funnel_recency", "auc_p"] < 0.05  # the others are tested against the fallback reference
    sig = (tmp_path / "significance.md").read_text()
    assert "Reference: Logistic regression *(not in paper)* (fallback, because asLLR (w/o HPRO) scored every test lead " \
           "the same" in sig
    assert re.search(r"\| LightGBM \*\(not in paper\)\* +\| constant scores: not tested +\|", sig)

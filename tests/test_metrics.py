"""Metrics against hand-computed cases, including ties."""

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from benchmark.metrics import bootstrap, evaluate, point, precision_at, recall_at, top_k
from feature_store.errors import DataError


def test_top_k_is_ceil():
    assert top_k(1000, 0.1) == 1 and top_k(1001, 0.1) == 2 and top_k(100, 1.0) == 1 and top_k(9, 50) == 5


def test_precision_recall_without_ties():
    y = np.array([1, 0, 1, 0, 0, 0, 0, 0, 0, 1])
    s = np.arange(10, 0, -1, dtype=float)  # lead 0 ranked first
    assert precision_at(y, s, 10) == 1.0  # k = 1
    assert precision_at(y, s, 30) == pytest.approx(2 / 3)  # k = 3: leads 0,1,2
    assert recall_at(y, s, 30) == pytest.approx(2 / 3)
    assert recall_at(y, s, 100) == 1.0


def test_ties_at_the_cut_get_pro_rata_credit():
    # top lead alone, then a tie group of 4 leads holding 1 positive; k = 3 takes 2 of the 4.
    y = np.array([1, 1, 0, 0, 0, 0])
    s = np.array([5, 2, 2, 2, 2, 1], dtype=float)
    assert precision_at(y, s, 50) == pytest.approx((1 + 2 * 1 / 4) / 3)
    assert recall_at(y, s, 50) == pytest.approx((1 + 0.5) / 2)


def test_constant_scores_give_the_base_rate():
    y = np.array([1, 0, 0, 0, 1, 0, 0, 0, 0, 0])
    s = np.zeros(10)
    assert precision_at(y, s, 10) == pytest.approx(0.2)
    assert point("auc", y, s) == 0.5


def test_weighted_auc_matches_sklearn_with_ties():
    rng = np.random.default_rng(0)
    y = (rng.random(500) < 0.1).astype(int)
    s = np.round(rng.normal(size=500) + y, 1)  # many ties
    boots = bootstrap(y, [s], ("auc",), n_resamples=3, seed=0)
    assert boots["auc"].shape == (1, 3)
    from benchmark.metrics import Ranking, _weighted
    assert _weighted("auc", Ranking(s, y), np.ones((1, 500)))[0] == pytest.approx(roc_auc_score(y, s))


def test_bootstrap_is_stratified_and_ci_brackets_the_value():
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.05).astype(int)
    s = rng.normal(size=3000) + 1.5 * y
    est = evaluate(y, s, n_resamples=300, seed=0)
    for e in est.values():
        assert e.ci_low <= e.value <= e.ci_high
    assert 0.02 < est["auc"].ci_high - est["auc"].ci_low < 0.12


def test_paired_resamples_give_zero_difference_for_identical_scores():
    rng = np.random.default_rng(2)
    y = (rng.random(800) < 0.1).astype(int)
    s = rng.normal(size=800)
    b = bootstrap(y, [s, s.copy()], n_resamples=50, seed=0)
    for k, v in b.items():
        assert np.allclose(v[0], v[1])


def test_single_class_test_split_is_a_clear_error():
    with pytest.raises(DataError, match="only one class"):
        evaluate(np.zeros(10), np.arange(10.0))

"""The binned bootstrap (above ``BINNED_ABOVE`` test leads) against the per-lead one it replaces there.

Same multiplicities -> the same metrics; independent draws -> the same distribution within Monte-Carlo
error; identical score vectors stay paired. The threshold is lowered here, so small data takes the binned
path and the tests stay light."""

import numpy as np
import pytest

import benchmark.metrics as metrics
from benchmark.metrics import Bins, Ranking, bootstrap, bootstrap_weights, evaluate

W_POS, W_NEG = 3.0, 47.5  # a case-control sample: every positive, 1 negative in 47.5


def _data(n: int = 10_000, seed: int = 7):
    """Labels at 6 %, a scorer with large tie groups mixing positives and negatives, a continuous one,
    and case-control sampling weights."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.06).astype(np.int8)
    ties = np.round(rng.normal(size=n) + y, 1)
    continuous = rng.normal(size=n) + 1.2 * y
    return y, ties, continuous, np.where(y == 1, W_POS, W_NEG)


@pytest.mark.parametrize("which", [1, 2], ids=["ties", "continuous"])
def test_bins_give_the_tie_groups_metrics_for_the_same_multiplicities(which):
    data = _data(3000)
    y, s, w = data[0], data[which], data[3]
    mult = np.vstack(bootstrap_weights(y, 40, seed=5)).astype(np.float64)
    rank = Ranking(s, y)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y != 1)
    bins = Bins(rank, pos, neg)
    assert bins.n <= 2 * len(pos) + 1
    pg = W_POS * bins.positives(mult[:, pos])
    wg = pg + W_NEG * np.stack([np.bincount(bins.neg_bin, weights=m[neg], minlength=bins.n) for m in mult])
    for key in metrics.METRIC_KEYS:
        per_lead = metrics._from_groups(key, *rank.grouped(mult * w))
        np.testing.assert_allclose(metrics._from_groups(key, wg, pg), per_lead, rtol=1e-12, atol=1e-15)


def test_binned_draws_have_the_per_lead_distribution(monkeypatch):
    """1,000 resamples each way, for one score vector (negatives drawn per bin) and for a pair (drawn as
    lead indices). Mean: within 4 standard errors; 2.5 / 97.5 percentiles: within 0.5 sd (about 4 standard
    errors of a difference of two percentiles at 1,000 resamples); sd within 15 %.

    P@0.1 % is left out: on 6,000 leads its top is ~6 leads, a grid of a few dozen values whose
    percentiles move by a whole step between two per-lead runs as well; the test above covers its code."""
    y, ties, continuous, w = _data(6000)
    keys = ("auc", "p_at_1.0", "r_at_5.0")
    per_lead = bootstrap(y, [ties, continuous], keys, n_resamples=1000, seed=3, weight=w)
    monkeypatch.setattr(metrics, "BINNED_ABOVE", 1000)
    pair = bootstrap(y, [ties, continuous], keys, n_resamples=1000, seed=3, weight=w)
    single = [bootstrap(y, [s], keys, n_resamples=1000, seed=3, weight=w) for s in (ties, continuous)]
    for key, ref in per_lead.items():
        sd = ref.std(1)
        for got in (pair[key], np.vstack([single[0][key], single[1][key]])):
            assert np.all(np.abs(got.mean(1) - ref.mean(1)) <= 4 * sd * np.sqrt(2 / 1000)), key
            for q in (2.5, 97.5):
                assert np.all(np.abs(np.percentile(got, q, axis=1) - np.percentile(ref, q, axis=1)) <= 0.5 * sd), key
            assert np.all(np.abs(got.std(1) / sd - 1) <= 0.15), key


def test_above_the_threshold_no_per_lead_resample_is_drawn_and_point_values_stay(monkeypatch):
    y, ties, _, w = _data(5000)
    small = evaluate(y, ties, n_resamples=200, seed=1, weight=w)
    assert small == evaluate(y, ties, n_resamples=200, seed=1, weight=w)  # at the threshold: the per-lead draw
    monkeypatch.setattr(metrics, "BINNED_ABOVE", len(y) - 1)

    def per_lead(*_):
        raise AssertionError("per-lead resamples drawn above the threshold")

    monkeypatch.setattr(metrics, "bootstrap_weights", per_lead)
    binned = evaluate(y, ties, n_resamples=200, seed=1, weight=w)
    assert {k: e.value for k, e in binned.items()} == {k: e.value for k, e in small.items()}
    assert {k: (e.ci_low, e.ci_high) for k, e in binned.items()} != {k: (e.ci_low, e.ci_high) for k, e in small.items()}


def test_binned_paired_resamples_give_zero_difference_for_identical_scores(monkeypatch):
    y, ties, continuous, w = _data(3000)
    monkeypatch.setattr(metrics, "BINNED_ABOVE", 1000)
    b = bootstrap(y, [continuous, ties, continuous.copy()], n_resamples=50, seed=0, weight=w)
    for k, v in b.items():
        assert v.shape == (3, 50)
        np.testing.assert_array_equal(v[0], v[2], err_msg=k)
        assert not np.array_equal(v[0], v[1]), k


def test_weights_must_be_uniform_within_a_class():
    y, ties, _, w = _data(500)
    w[np.flatnonzero(y == 0)[0]] *= 2
    with pytest.raises(ValueError, match="uniform within each class"):
        bootstrap(y, [ties], n_resamples=10, weight=w)

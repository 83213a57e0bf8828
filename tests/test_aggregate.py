"""Seeds aggregate into one table cell: with >= 3 the mean and the wider of the t-interval over seeds and the
mean bootstrap CI, else the lowest seed's bootstrap CI."""

import numpy as np
import pytest
from scipy import stats

from benchmark.results import RunRecord
from benchmark.tables import aggregate


def _rec(seed, auc, lo=None, hi=None, status="ok"):
    m = {"auc": {"value": auc, "ci_low": lo if lo is not None else auc - 0.01,
                 "ci_high": hi if hi is not None else auc + 0.01}}
    return RunRecord(dataset="d", method="m", seed=seed, table="table1", status=status, metrics=m)


def test_three_seeds_give_the_mean_and_a_t_interval():
    vals = [0.70, 0.72, 0.77]
    cell = aggregate([_rec(s, v) for s, v in enumerate(vals)])
    half = stats.t.ppf(0.975, 2) * np.std(vals, ddof=1) / np.sqrt(3)
    e = cell.estimates["auc"]
    assert e.value == pytest.approx(np.mean(vals))
    assert (e.ci_low, e.ci_high) == pytest.approx((np.mean(vals) - half, np.mean(vals) + half))
    assert "3 seeds" in cell.note


def test_a_deterministic_method_keeps_its_test_sampling_uncertainty():
    """No spread over seeds (a rule, the oracle): the CI is the bootstrap one, not a zero-width interval."""
    cell = aggregate([_rec(s, 0.83, 0.79, 0.87) for s in range(3)])
    assert cell.estimates["auc"].to_dict() == pytest.approx({"value": 0.83, "ci_low": 0.79, "ci_high": 0.87})
    near_one = aggregate([_rec(s, 0.99, 0.95, 1.0) for s in range(3)]).estimates["auc"]
    assert near_one.ci_high == 1.0  # clipped to what the metric can take


def test_fewer_than_three_seeds_keep_the_lowest_seed_bootstrap_ci():
    cell = aggregate([_rec(1, 0.8, 0.75, 0.85), _rec(0, 0.6, 0.5, 0.7)])
    assert cell.estimates["auc"].to_dict() == {"value": 0.6, "ci_low": 0.5, "ci_high": 0.7}
    assert "bootstrap" in cell.note


def test_missing_and_na_runs():
    assert aggregate([]).status == "not run"
    na = RunRecord(dataset="d", method="m", seed=0, table="table1", status="n/a", reason="no text column")
    cell = aggregate([na])
    assert cell.status == "n/a" and cell.reason == "no text column"

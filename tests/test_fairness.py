"""Fair comparisons that live in the data path: the embargo before the test cutoff, the two oracle ceilings."""

import numpy as np
import pandas as pd
import pytest

from feature_store.errors import SpecError
from feature_store.sampling import split_indices
from feature_store.spec import DatasetSpec


def _frame(days: int = 100, per_day: int = 10) -> pd.DataFrame:
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.repeat(np.arange(days), per_day), unit="D")
    return pd.DataFrame({"id": np.arange(len(t)), "t": t.to_numpy(), "y": np.arange(len(t)) % 7 == 0})


def _spec(**split) -> DatasetSpec:
    return DatasetSpec.from_dict({"name": "g", "files": ["x"], "id": "id", "time": "t", "label": "y",
                                  "features": {"numeric": ["n"]}, "split": split}, source="spec.yaml")


def test_gap_days_drops_the_leads_scored_just_before_the_test_cutoff():
    frame = _frame()
    fit0, valid0, test0 = split_indices(_spec(), frame)
    fit, valid, test = split_indices(_spec(gap_days=5), frame)
    assert np.array_equal(test, test0)  # the test leads never change
    t = frame.t.to_numpy()
    cutoff = t[test].min()
    kept = np.concatenate([fit, valid])
    assert (t[kept] < cutoff - np.timedelta64(5, "D")).all()
    dropped = np.setdiff1d(np.concatenate([fit0, valid0]), kept)
    assert len(dropped) == 5 * 10 and (t[dropped] >= cutoff - np.timedelta64(5, "D")).all()
    assert t[valid].min() > t[fit].max()  # valid is still the newest part of what remains


def test_gap_days_needs_a_temporal_split_and_is_left_out_of_the_fingerprint_when_zero():
    with pytest.raises(SpecError, match="gap_days .* needs kind: temporal"):
        _spec(kind="random", gap_days=3)
    assert "gap_days" not in _spec().to_dict()["split"] and _spec(gap_days=2).to_dict()["split"]["gap_days"] == 2


def _llm_record(method: str, seed: int, exposure: dict):
    from benchmark.results import RunRecord

    return RunRecord(dataset="d", method=method, seed=seed, table="table2", status="ok",
                     info={"train_exposure": exposure})


def test_the_table_says_whether_the_lift_row_compares_equal_exposure():
    from benchmark.tables import _exposure_notes

    same = {"leads": 3000, "positives": 300, "steps": 375, "batch_sequence_sha256": "ab"}
    equal = _exposure_notes("table2", [_llm_record(m, s, same) for m in ("asllr_ce", "asllr_hpro") for s in (0, 1)])
    assert equal == ["Equal exposure: asLLR (w/ HPRO) and asllr_ce trained on the same leads in the same batches "
                     "(2 seed(s); seed 0: 3,000 leads, 300 positives, 375 optimizer steps)."]
    other = {**same, "batch_sequence_sha256": "cd"}
    unequal = _exposure_notes("table2", [_llm_record("asllr_ce", 0, same), _llm_record("asllr_hpro", 0, other)])
    assert unequal and unequal[0].startswith("UNEQUAL exposure") and "seed(s) [0]" in unequal[0]

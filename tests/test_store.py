"""Feature store: spec validation, temporal split, train-only encoders, hidden test outcomes."""

import numpy as np
import pandas as pd
import pytest

from feature_store.encoders import OOV, TableEncoder
from feature_store.errors import OutcomeAccessError, SpecError
from feature_store.spec import DatasetSpec
from feature_store.store import Dataset

BASE = dict(name="t", files=["x.parquet"], id="id", time="t", label="y",
            features={"categorical": ["c"], "numeric": ["n"]},
            outcomes={"final_stage": "fs", "call_seconds": "cs"}, p_true="pt")


@pytest.mark.parametrize("col", ["y", "fs", "cs", "pt"])
def test_spec_refuses_label_outcome_or_p_true_as_feature(col):
    d = dict(BASE, features={"categorical": ["c", col], "numeric": ["n"]})
    with pytest.raises(SpecError, match=f"'{col}'.*leak"):
        DatasetSpec.from_dict(d, source="spec.yaml")


def test_spec_refuses_outcome_as_current_stage():
    with pytest.raises(SpecError, match="current stage"):
        DatasetSpec.from_dict(dict(BASE, current_stage="fs"), source="spec.yaml")


def test_spec_error_names_the_file_and_unknown_key():
    with pytest.raises(SpecError, match=r"spec.yaml.*unknown key"):
        DatasetSpec.from_dict(dict(BASE, labels="y"), source="spec.yaml")


def _toy(n=100, tie_at_boundary=False):
    t = pd.date_range("2024-01-01", periods=n, freq="h")
    if tie_at_boundary:
        t = t.where(~((np.arange(n) >= 65) & (np.arange(n) < 75)), t[70])
    rng = np.random.default_rng(0)
    return pd.DataFrame({"id": np.arange(n)[::-1], "t": t, "y": (rng.random(n) < 0.3).astype(int),
                         "c": rng.choice(["a", "b"], n), "n": rng.normal(size=n),
                         "fs": "call", "cs": 1.0, "pt": 0.3})


def _dataset(df):
    spec = DatasetSpec.from_dict(BASE)
    return Dataset(spec, df, "fp")


@pytest.mark.parametrize("ties", [False, True])
def test_temporal_split_has_no_time_overlap_and_valid_is_newest_train(ties):
    df = _toy(tie_at_boundary=ties)
    fit, valid, test = _dataset(df).split_indices()
    t = df.t.to_numpy()
    assert len(fit) + len(valid) + len(test) == len(df)
    assert t[fit].max() < t[valid].min() <= t[valid].max() < t[test].min()
    assert len(test) >= 30 and len(valid) >= int(0.1 * (len(df) - len(test)))  # ties go to the newer part


def test_test_outcomes_are_hidden_and_reads_are_counted(tiny_splits):
    _, s = tiny_splits
    assert len(s.train.y) == len(s.train) and s.train.outcomes is not None
    with pytest.raises(OutcomeAccessError):
        s.test.y
    with pytest.raises(OutcomeAccessError):
        s.test.outcomes
    assert s.test.reads["labels"] >= 1
    sub = s.test.take(np.arange(5))
    with pytest.raises(OutcomeAccessError):
        sub.y


def test_encoders_fit_on_train_only_and_map_unseen_to_oov():
    train = pd.DataFrame({"c": ["a", "b", None], "n": [1.0, np.nan, 3.0]})
    enc = TableEncoder(("c",), ("n",)).fit(train)
    cat, num = enc.transform(pd.DataFrame({"c": ["a", "zzz", None], "n": [np.nan, 2.0, 100.0]}))
    assert cat[1, 0] == OOV and cat[0, 0] != OOV and cat[2, 0] not in (OOV, cat[0, 0])
    assert enc.numeric_names == ("n", "n__missing")
    assert num[0, 1] == 1.0 and num[1, 1] == 0.0
    assert num[0, 0] == pytest.approx((2.0 - 2.0) / 1.0)  # median-imputed, scaled by train stats


def test_splits_encode_with_train_vocabulary(tiny_splits):
    _, s = tiny_splits
    card = s.train.schema.cardinalities
    for j, col in enumerate(s.train.schema.categorical):
        assert s.test.cat[:, j].max() < card[col]
        assert (s.train.cat[:, j] != OOV).all()

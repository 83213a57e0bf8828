"""Feature store: spec validation, the one split, train-only encoders, hidden test outcomes."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from feature_store.encoders import OOV, TableEncoder
from feature_store.errors import DataError, OutcomeAccessError, SpecError
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


# ---- one split, the same leads as before the restructure ---------------------------------------------

def _split_before(spec, df):
    """Frozen copy of the split and test subsample as the committed results were computed (do not edit)."""
    import math

    from sklearn.model_selection import train_test_split

    s, label = spec.split, df[spec.label].to_numpy()
    if s.kind == "random":
        idx = np.arange(len(df))
        strat = label if np.bincount(label.astype(int)).min() >= 2 else None
        rest, test = train_test_split(idx, test_size=s.test_fraction, random_state=s.seed, stratify=strat)
        strat = label[rest] if strat is not None else None
        fit, valid = train_test_split(rest, test_size=s.valid_fraction, random_state=s.seed, stratify=strat)
        return np.sort(fit), np.sort(valid), np.sort(test)

    def newest(order, t, fraction):
        c = min(int(math.ceil((1 - fraction) * len(order))), len(order) - 1)
        return order[t[order] < t[order[c]]], order[t[order] >= t[order[c]]]

    t = df[spec.time].to_numpy()
    rest, test = newest(np.lexsort((df[spec.id].to_numpy(), t)), t, s.test_fraction)
    return (*newest(rest, t, s.valid_fraction), test)


def _assert_same_cut(ds):
    cut = ds.split_indices()
    before = _split_before(ds.spec, ds.frame)
    assert all((a == b).all() for a, b in zip(cut, before))
    assert (ds.splits().truth.ids == ds.frame[ds.spec.id].to_numpy()[before[2]]).all()


@settings(max_examples=25, deadline=None)
@given(st.integers(20, 120), st.integers(1, 30), st.booleans(), st.integers(0, 2**16))
def test_split_selects_the_same_leads_as_before(n, distinct_times, random_split, seed):
    rng = np.random.default_rng(seed)
    df = _toy(n)
    df["t"] = pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, distinct_times, n), unit="D")
    y = (rng.random(n) < 0.3).astype(np.int8)
    y[:2] = [0, 1]
    df["y"] = y
    split = {"kind": "random", "seed": seed % 7} if random_split else {}
    ds = Dataset(DatasetSpec.from_dict(dict(BASE, split=split)), df, "fp")
    try:
        _assert_same_cut(ds)
    except DataError:  # (nearly) every lead at one time: no temporal cut (the old code failed too)
        assert not random_split


def test_a_generated_world_is_cut_as_before(tiny_splits):
    ds, _ = tiny_splits
    _assert_same_cut(ds)


# ---- case-control test samples ------------------------------------------------------------------------

def test_case_control_sample_keeps_the_asked_counts_and_weights_to_the_split(tiny_splits):
    ds, _ = tiny_splits
    full = ds.splits()
    y_full = full.truth.label
    n_pos, n_neg = int(y_full.sum()), int((y_full == 0).sum())
    assert (full.truth.weight == 1.0).all() and not full.truth.sample.case_control
    cc = ds.splits(test_positives=n_pos // 2, test_negatives=100, subsample_seed=3)
    t = cc.truth
    assert int(t.label.sum()) == n_pos // 2 and int((t.label == 0).sum()) == 100
    assert set(t.ids) <= set(full.truth.ids) and len(set(t.ids)) == len(t.ids)
    assert t.weight.sum() == pytest.approx(len(y_full))  # each lead stands for 1/fraction leads of its class
    assert np.allclose(t.weight[t.label == 1], n_pos / (n_pos // 2))
    assert np.allclose(t.weight[t.label == 0], n_neg / 100)
    assert (cc.test.ids == t.ids).all()
    again = ds.splits(test_positives=n_pos // 2, test_negatives=100, subsample_seed=3).truth
    other = ds.splits(test_positives=n_pos // 2, test_negatives=100, subsample_seed=4).truth
    assert (again.ids == t.ids).all() and not np.array_equal(other.ids, t.ids)
    assert t.sample.to_dict() == {"design": "case-control", "positives": n_pos // 2, "positives_in_split": n_pos,
                                  "negatives": 100, "negatives_in_split": n_neg, "seed": 3}
    # asking for more than the split holds keeps the whole split, unweighted
    assert ds.splits(test_positives=10 ** 6, test_negatives=10 ** 6).truth.sample.to_dict() == {"design": "full"}


@settings(max_examples=150, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=2, max_size=60), st.floats(0.05, 0.95), st.floats(0.0, 0.9))
def test_temporal_split_never_overlaps_for_any_time_distribution(days, test_fraction, valid_fraction):
    """No lead in two parts, every lead in one, and train < valid < test in time (ties included)."""
    df = pd.DataFrame({"id": np.arange(len(days)), "t": pd.Timestamp("2024-01-01") + pd.to_timedelta(days, unit="D"),
                       "y": np.arange(len(days)) % 2, "c": "a", "n": 0.0, "fs": "call", "cs": 1.0, "pt": 0.3})
    split = {"test_fraction": test_fraction, "valid_fraction": valid_fraction}
    try:
        fit, valid, test = Dataset(DatasetSpec.from_dict(dict(BASE, split=split)), df, "fp").split_indices()
    except DataError as e:
        assert "share the boundary time" in str(e)
        return
    assert sorted([*fit, *valid, *test]) == list(range(len(df)))
    t = df.t.to_numpy()
    assert len(fit) and len(valid) and len(test)
    assert t[fit].max() < t[valid].min() and t[valid].max() < t[test].min()


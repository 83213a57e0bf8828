"""CTR baselines (deepctr-torch), Funnel+CTR, LightGBM and logistic regression on a hand-made world
with a strong signal."""

import subprocess
import sys
import textwrap
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from baselines import deepctr_compat as dc
from benchmark import registry
from feature_store.errors import DataError
from feature_store.schema import Schema
from feature_store.split import Split

STAGES = ("new", "contacted", "visited", "test_drive")


def strong_world(n: int = 2400, seed: int = 0, h_dim: int = 8) -> tuple[Split, Split, Split]:
    """Train/valid/test splits whose label follows the categoricals, a numeric, the stage and h_text."""
    rng = np.random.default_rng(seed)
    cat = np.column_stack([rng.integers(1, 6, n), rng.integers(1, 5, n), rng.integers(0, 40, n)])
    num = rng.normal(size=(n, 2)).astype(np.float32)
    stage = rng.integers(-1, len(STAGES), n)
    h = rng.normal(size=(n, h_dim)).astype(np.float32)
    logit = (-1.5 + 2.0 * (cat[:, 0] == 1) - 1.5 * (cat[:, 1] >= 3) + 1.5 * num[:, 0] + 1.0 * stage
             + 0.5 * h[:, 0])
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(np.int8)
    schema = Schema(dataset="strong", categorical=("a", "b", "c.id"), numeric=("x", "noise"), text=(),
                    cardinalities={"a": 6, "b": 5, "c.id": 40}, stage_order=STAGES,
                    final_stage_order=(), groups={})
    cuts = np.cumsum([int(0.6 * n), int(0.15 * n)])

    def part(name, idx):
        return Split(name=name, schema=schema, ids=idx, time=idx.astype("datetime64[s]"), cat=cat[idx],
                     num=num[idx], raw=pd.DataFrame(index=range(len(idx))), texts={}, stage=stage[idx],
                     h_text=h[idx], _label=y[idx], protected=name == "test")
    return tuple(part(name, idx) for name, idx in zip(("train", "valid", "test"), np.split(np.arange(n), cuts)))


@pytest.fixture(scope="module")
def world():
    return strong_world()


def make(name: str, seed: int = 0, **ctr):
    return registry.get(name).from_config({"ctr": {"epochs": 4, "batch_size": 64, **ctr}}, seed=seed)


def auc_of(world, scores) -> float:
    return roc_auc_score(world[2]._label, scores)


CTR_METHODS = sorted(n for n, m in registry.all_methods().items() if m.family == "ctr" and m.tables)
SIX = ("wdl", "deepfm", "xdeepfm", "dcn", "dcnm", "autoint")


def test_every_table_row_is_registered():
    assert {*SIX, *(f"{m}+h_text" for m in SIX), "funnel_ctr_two_stage", "funnel_ctr_direct"} == set(CTR_METHODS)
    assert [m.name for m in registry.rows("table1") if m.family == "ctr"] == [*SIX, *(f"{m}+h_text" for m in SIX)]
    assert registry.get("autoint+h_text").baseline_in("table1") == "autoint"
    assert registry.get("deepfm+h_text").requires == ("tabular", "h_text")
    assert registry.get("deepfm").requires == ("tabular",) and registry.get("autoint").requires == ("tabular", "categorical")
    assert registry.get("funnel_ctr_direct").tables == ("table2",) and registry.get("dcnm").tables == ("table1",)
    lgbm = registry.get("lightgbm")
    assert lgbm.tables == ("table1", "table2", "table3") and not lgbm.in_paper


@pytest.mark.parametrize("name", CTR_METHODS + ["lightgbm"])
def test_each_variant_learns_a_strong_signal(name, world):
    train, valid, test = world
    method = make(name).fit(train, valid)
    scores = method.score(test)
    assert scores.shape == (len(test),) and np.all(np.isfinite(scores))
    assert auc_of(world, scores) > 0.7, name
    assert test.reads["labels"] == 0


def test_two_stage_ranks_every_deeper_stage_first(world):
    train, valid, test = world
    scores = make("funnel_ctr_two_stage").fit(train, valid).score(test)
    order = np.argsort(-scores, kind="stable")
    assert np.all(np.diff(test.stage[order]) <= 0)  # stage depth never increases down the ranking
    within = test.stage == 1
    assert len(np.unique(scores[within])) > within.sum() // 2  # DeepFM still ranks inside a group


def test_every_row_reads_the_stage_as_a_categorical_and_two_stage_also_groups_by_it(world):
    train, valid, test = world
    assert train.codes()[:, -1].tolist() == (train.stage + 1).tolist()  # unknown (-1) is a level of its own: 0
    assert train.schema.table_categorical[-1] == ("stage", len(STAGES) + 1)
    for name in ("deepfm", "deepfm+h_text", "funnel_ctr_direct", "funnel_ctr_two_stage"):
        names = [c.name for c in make(name)._inputs(train)[0]]
        assert "c3_stage" in names, name
    assert registry.get("funnel_ctr_direct").requires == ("stage",) and registry.get("deepfm").requires == ("tabular",)
    with pytest.raises(Exception, match="stage"):
        registry.get("deepctr").Options(stage="none")  # no row may hide the stage any more


@pytest.mark.parametrize("name", ["logreg", "lightgbm", "deepfm"])
def test_table_only_models_gain_from_the_stage_where_it_drives_conversion(name, world):
    """The strong world's log-odds rise by 1 per stage: hiding the stage (a schema without one) costs AUC."""
    train, valid, test = world
    hidden = [replace(s, schema=replace(s.schema, stage_order=())) for s in world]
    with_stage = auc_of(world, make(name).fit(train, valid).score(test))
    without = auc_of(world, make(name).fit(hidden[0], hidden[1]).score(hidden[2]))
    assert with_stage > without + 0.03, (with_stage, without)


def test_h_text_dimension_mismatch_is_a_clear_error(world):
    train, valid, test = world
    method = make("deepfm+h_text").fit(train, valid)
    with pytest.raises(DataError, match=r"fit with h_text of dimension 8.*test split carries dimension 4"):
        method.score(test.with_h_text(test.h_text[:, :4]))
    with pytest.raises(DataError, match="needs h_text"):
        make("wdl+h_text").fit(replace(train, h_text=None), valid)


def test_same_seed_gives_identical_scores_and_another_seed_does_not(world):
    train, valid, test = world
    for name in ("deepfm", "lightgbm"):
        a, b, c = (make(name, seed).fit(train, valid).score(test) for seed in (0, 0, 1))
        assert np.array_equal(a, b), name
        assert not np.array_equal(a, c), name


def test_a_one_class_validation_slice_trains_every_epoch_without_early_stopping(world):
    train, valid, test = world
    flat = replace(valid, _label=np.zeros(len(valid), dtype=np.int8))
    deepfm, lgbm = (make(name).fit(train, flat) for name in ("deepfm", "lightgbm"))
    for method in (deepfm, lgbm):
        assert method.run_info()["early_stopping"] is False and np.isfinite(method.score(test)).all()
    assert deepfm.run_info()["epochs_run"] == 4


def test_fit_keeps_stdout_clean_and_shows_one_bar_when_asked(world, capsys):
    train, valid, test = world
    registry.get("dcn").from_config({"ctr": {"epochs": 2}}, progress=True).fit(train, valid)
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("dcn:") >= 1 and "batch" in err and "Train on" not in err


def test_best_epoch_weights_are_restored_when_the_last_epoch_is_worse():
    """deepctr 0.3.0 restores the best weights only when patience runs out; the adapter always does."""
    model = torch.nn.Linear(1, 1)
    stopper = dc._BestOnValidAUC(patience=5)
    stopper.set_model(model)
    stopper.on_train_begin()
    for epoch, auc in enumerate((0.70, 0.80, 0.75)):
        model.eval()  # as deepctr's validation pass leaves it
        stopper.on_epoch_begin(epoch)
        assert model.training  # epochs after a validation pass train in train mode again
        with torch.no_grad():
            model.weight.fill_(auc)
        stopper.on_epoch_end(epoch, {"val_auc": auc})
    stopper.on_train_end()
    assert model.weight.item() == pytest.approx(0.80) and stopper.best_epoch == 1


def test_inputs_are_float32_and_codes_must_be_exact():
    x = dc.float32_inputs({"c": np.array([1, 2], dtype=np.int64), "n": np.array([0.5], dtype=np.float64)})
    assert all(v.dtype == np.float32 for v in x.values())
    with pytest.raises(ValueError, match="2\\*\\*24"):
        dc.float32_inputs({"c": np.array([2 ** 24])})


NETWORK_PROBE = textwrap.dedent("""
    import socket, sys, threading
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(args)
        raise OSError("network blocked by the test")
    socket.socket.connect = socket.socket.connect_ex = socket.create_connection = socket.getaddrinfo = refuse
    def settle():  # wait for foreground threads (deepctr's version check runs in one)
        for t in threading.enumerate():
            if t is not threading.main_thread() and not t.daemon:
                t.join(30)
        return len(attempts)

    import numpy as np
    from baselines import deepctr_compat as dc
    cols = [dc.SparseFeat("c", 3, embedding_dim=8), dc.DenseFeat("n", 1)]
    x, y = {"c": np.array([1, 2] * 50), "n": np.linspace(0, 1, 100)}, np.array([0, 1] * 50)
    model = dc.build_model("DeepFM", cols, seed=0)
    dc.fit(model, x, y, (x, y), batch_size=32, epochs=1, patience=1)
    dc.predict(model, x)
    print("ADAPTER", settle())
    for name in [m for m in sys.modules if m.startswith("deepctr_torch")]:
        del sys.modules[name]
    import deepctr_torch  # the control: a plain import phones home
    print("PLAIN", settle())
""")


def test_no_network_on_import_or_fit():
    """Through the adapter: zero connection attempts. A plain import (the control) does try."""
    run = subprocess.run([sys.executable, "-c", NETWORK_PROBE], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    counts = dict(line.split() for line in run.stdout.splitlines() if line.startswith(("ADAPTER", "PLAIN")))
    assert counts["ADAPTER"] == "0" and int(counts["PLAIN"]) > 0, run.stdout

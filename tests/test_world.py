"""The synthetic world: determinism, independent streams, a forward funnel, the two oracles."""

import hashlib
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from feature_store.spec import load_spec
from feature_store.synthetic import (BLOCK, FACTS, FINAL_STAGES, GENERATOR_VERSION, STAGES, WORLDS, World,
                                     generate)

OUTCOMES = ["final_stage", "call_seconds_after", "locked", "p_true", "p_true_table"]


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _read(folder):
    return pd.concat([pd.read_parquet(p) for p in sorted(folder.glob("leads-*.parquet"))], ignore_index=True)


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate("benchmark", 600, 3, tmp_path / "a", progress=False)
    generate("benchmark", 600, 3, tmp_path / "b", progress=False)
    generate("benchmark", 600, 4, tmp_path / "c", progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")
    identity = load_spec(tmp_path / "a" / "spec.yaml").generated_by.to_dict()
    assert identity == {"generator": "leadrank-synthetic", "version": GENERATOR_VERSION, "world": "benchmark",
                        "leads": 600, "seed": 3, "params": {}}


def test_chunk_size_does_not_change_the_data(tmp_path):
    leads = 2 * BLOCK + 1000  # three streams, cut differently into files
    generate("industrial", leads, 0, tmp_path / "a", progress=False, chunk=3000)
    generate("industrial", leads, 0, tmp_path / "b", progress=False, chunk=BLOCK + 7)
    assert len(list((tmp_path / "a").glob("leads-*.parquet"))) == 4
    pd.testing.assert_frame_equal(_read(tmp_path / "a"), _read(tmp_path / "b"))


@pytest.mark.parametrize("other", [("industrial", 2000), ("benchmark", 3000)], ids=["other world", "larger world"])
def test_worlds_share_no_leads(tmp_path, other):
    generate("benchmark", 2000, 0, tmp_path / "a", progress=False)
    generate(*other, 0, tmp_path / "b", progress=False)
    a, b = _read(tmp_path / "a"), _read(tmp_path / "b")
    assert not set(a.transcript[a.transcript != ""]) & set(b.transcript)
    features = [c for c in a.columns if c not in ["lead_id", "transcript", *OUTCOMES]]
    rows = lambda df: pd.util.hash_pandas_object(df[features], index=False)  # noqa: E731
    assert rows(a).isin(set(rows(b))).mean() < 0.01


@pytest.fixture(scope="module")
def small_world(tmp_path_factory):
    folder = tmp_path_factory.mktemp("world")
    generate("benchmark", 3000, 0, folder, progress=False)
    return _read(folder)


def test_the_funnel_runs_forward(small_world):
    df = small_world
    current = df.current_stage.map(STAGES.index)
    final = df.final_stage.map(FINAL_STAGES.index)
    assert (final >= current).all()  # new>=defeat, contacted>=call, visited>=visit, test_drive>=test_drive
    assert ((df.final_stage == "lock") == (df.locked == 1)).all()
    assert ((df.call_seconds_after == 0) == (df.final_stage == "defeat")).all()
    assert set(df.final_stage[df.current_stage == "test_drive"]) <= {"test_drive", "lock"}
    open_ = df.locked == 0
    assert (final[open_] > current[open_]).any() and (final[open_] == current[open_]).any()


def test_text_carries_signal_that_the_table_does_not(small_world):
    df = small_world
    has_deposit = df.transcript.str.contains("deposit")
    assert has_deposit.any() and (df.calls_so_far[has_deposit] > 0).all()
    assert (df.transcript[df.calls_so_far == 0] == "").all()
    assert (df.p_true_table[df.calls_so_far == 0] == df.p_true[df.calls_so_far == 0]).all()
    words = df.transcript.str.split().str.len()
    assert words.max() > 1500 and words[df.calls_so_far > 0].min() < 60
    assert (df.transcript.str.count(r"\[call ") == df.calls_so_far).all()


def test_every_stated_fact_is_in_the_transcript_verbatim():
    world = World.build("benchmark", 0)
    draw, table = world.draw(3000, 0), world.table(3000, 0).to_pandas()
    for fact in FACTS:
        # the text around the value is never garbled, so each template's fixed parts are there
        parts = [t.split("{")[0] for t in fact.templates]
        said = table.transcript.apply(lambda text: any(p in text for p in parts))  # noqa: B023
        assert (said == draw.obs[fact.key]).all(), fact.key


@pytest.fixture(scope="module", params=sorted(WORLDS))
def big_draw(request):
    """200k leads drawn without rendering transcripts (fast), with the latent intent."""
    world = World.build(request.param, seed=11)
    leads = 50 * BLOCK
    draws = [world.draw(leads, b) for b in world.blocks(leads)]
    cat = lambda key: np.concatenate([getattr(d, key) for d in draws])  # noqa: E731
    z = np.concatenate([d.obs["z"] for d in draws])
    return request.param, cat("y"), cat("p_true"), cat("p_true_table"), z


def test_positive_rate_hits_target(big_draw):
    world, y, *_ = big_draw
    target = WORLDS[world].target_rate
    sd = np.sqrt(target * (1 - target) / len(y))
    assert abs(y.mean() - target) < 4 * sd + 0.0005  # sampling noise + pilot calibration error


def _assert_calibrated(score, outcome, variance):
    """Binned by score deciles, the outcome's mean matches the score's mean."""
    bins = np.quantile(score, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(bins, score, side="right") - 1, 0, 9)
    for b in range(10):
        m = idx == b
        expected, observed = score[m].mean(), outcome[m].mean()
        sd = np.sqrt(np.sum(variance[m])) / m.sum()
        assert abs(observed - expected) <= 4.5 * sd + 1e-12, (b, observed, expected)  # sd 0: leads without calls


def test_p_true_is_calibrated(big_draw):
    _, y, p, *_ = big_draw
    _assert_calibrated(p, y, p * (1 - p))


def test_p_true_table_is_the_expectation_of_p_true_given_the_table(big_draw):
    # p_true_table = E[p_true | table]: far less noisy than checking it against the labels
    _, y, p, p_table, _ = big_draw
    _assert_calibrated(p_table, p, (p - p_table) ** 2)
    _assert_calibrated(p_table, y, p_table * (1 - p_table))
    assert roc_auc_score(y, p) > roc_auc_score(y, p_table) + 0.005


def test_p_true_cannot_be_beaten_even_with_the_latent_intent(big_draw):
    _, y, p, _, z = big_draw
    half = len(y) // 2
    x = np.column_stack([np.log(p / (1 - p)), z])
    model = LogisticRegression().fit(x[:half], y[:half])
    auc_model = roc_auc_score(y[half:], model.decision_function(x[half:]))
    auc_true = roc_auc_score(y[half:], p[half:])
    # Bootstrap-scale noise of an AUC difference on ~1.4k positives is ~0.005.
    assert auc_model <= auc_true + 0.005
    assert roc_auc_score(y, z) < roc_auc_score(y, p)


def test_without_text_effects_the_two_oracles_agree():
    world = World.build(replace(WORLDS["benchmark"], text_scale=0.0), seed=2)
    draws = [world.draw(3 * BLOCK, b) for b in range(3)]
    np.testing.assert_allclose(np.concatenate([d.p_true_table for d in draws]),
                               np.concatenate([d.p_true for d in draws]), rtol=0, atol=1e-9)


def _expected_auc(p_true, score):
    """The AUC of ``score`` in expectation over the labels (each lead a positive with weight p_true):
    the world's own figure, free of the noise of one label draw."""
    y = np.r_[np.ones(len(p_true)), np.zeros(len(p_true))]
    return roc_auc_score(y, np.r_[score, score], sample_weight=np.r_[p_true, 1 - p_true])


def test_the_textual_world_leaves_text_readers_at_least_0_10_auc_of_headroom():
    """The positive control (Table 3): the oracle minus the table-only oracle, measured on 16k leads."""
    world = World.build("textual", seed=0)
    draws = [world.draw(4 * BLOCK, b) for b in range(4)]
    p, p_table = np.concatenate([d.p_true for d in draws]), np.concatenate([d.p_true_table for d in draws])
    headroom = _expected_auc(p, p) - _expected_auc(p, p_table)
    assert headroom >= 0.10, headroom
    benchmark = World.build("benchmark", seed=0).draw(4 * BLOCK, 0)
    assert headroom > 2 * (_expected_auc(benchmark.p_true, benchmark.p_true)
                           - _expected_auc(benchmark.p_true, benchmark.p_true_table))

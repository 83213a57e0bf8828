"""LLM diagnostics (llm_ranker.diagnostics) on constructed cases whose answers are known."""

import numpy as np
import pytest

from llm_ranker import diagnostics as dg

STAGES = ("new", "contacted", "visited", "test_drive")


def test_loss_by_tenth_is_the_mean_of_each_tenth_of_training():
    assert dg.loss_by_tenth(np.arange(100.0)) == [4.5 + 10 * k for k in range(10)]
    short = dg.loss_by_tenth([1.0, 2.0, 3.0])  # fewer batches than tenths: the empty tenths say so
    assert short[:3] == [1.0, 2.0, 3.0] and short[3:] == [None] * 7


def test_scores_equal_to_prompt_length_give_spearman_one_and_the_length_auc():
    rng = np.random.default_rng(0)
    tokens = rng.integers(100, 400, 500)
    y = (rng.random(500) < tokens / 800).astype(int)
    d = dg.describe(tokens.astype(float), y, tokens, None, STAGES, [0.5] * 20, 0.7)
    assert d["spearman_prompt_tokens"] == 1.0
    assert d["prompt_tokens_auc"] > 0.6 and d["within_stage_auc"] is None and d["valid_auc"] == 0.7
    assert dg.spearman(-tokens.astype(float), tokens) == -1.0 and dg.spearman(np.zeros(5), np.arange(5)) is None
    # a row that is prompt length is flagged; a row that ranks well above it is not
    assert "follow prompt length" in dg.flags(d, d["prompt_tokens_auc"])[0]
    assert dg.flags(d, d["prompt_tokens_auc"] + 0.05) == []


def test_within_stage_auc_sees_a_ranker_that_only_sorts_the_stages():
    rng = np.random.default_rng(1)
    stage = rng.integers(0, 4, 4000)
    y = (rng.random(4000) < 0.05 + 0.1 * stage).astype(int)
    stage[:5], y[:5] = -1, 0  # a missing stage is its own group (here with one class)
    stage_only = stage + 0.01 * rng.random(4000)  # orders the stages, random inside each
    d = dg.describe(stage_only, y, np.full(4000, 300), stage, STAGES, [], None)
    assert set(d["within_stage_auc"]) == {*STAGES, "(missing)"} and d["within_stage_auc"]["(missing)"] is None
    assert all(abs(a - 0.5) < 0.1 for s, a in d["within_stage_auc"].items() if a is not None)
    assert d["spearman_prompt_tokens"] is None and d["loss_by_tenth"] == [None] * 10
    assert "near chance" in " ".join(dg.flags(d, 0.7))
    reads = stage + 3 * y + rng.random(4000)  # knows the label inside every stage
    assert dg.pooled_within_stage_auc(dg.describe(reads, y, np.full(4000, 300), stage, STAGES, [], None)) > 0.9


def test_a_stage_with_one_class_has_no_auc():
    auc, pairs = dg.within_stage(np.array([0, 0, 1, 0]), np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 0, 1, 1]),
                                 STAGES)
    assert auc == {"new": None, "contacted": 0.0} and pairs == {"new": 0, "contacted": 1}


@pytest.mark.parametrize("n_pos, n_neg, cap, k", [(30, 500, 400, 30), (300, 500, 400, 200), (0, 50, 40, 0)])
def test_the_validation_sample_is_class_balanced(n_pos, n_neg, cap, k):
    y = np.r_[np.ones(n_pos, int), np.zeros(n_neg, int)]
    idx = dg.balanced_positions(y, cap, seed=0)
    assert (y[idx] == 1).sum() == (y[idx] == 0).sum() == k
    np.testing.assert_array_equal(idx, dg.balanced_positions(y, cap, seed=0))


def test_the_validation_sample_size_is_recorded_beside_its_auc():
    """A curve point's pro-rata validation cut can hold one positive: the AUC on its 2 balanced leads is 0 or 1,
    so the result keeps the sample's size and the footnote says it is too few to read."""
    from benchmark.tables import _valid_sample

    d = dg.describe(np.r_[0.2, 0.8], np.r_[0, 1], np.r_[5, 9], None, STAGES, [1.0], valid_auc=1.0, valid_leads=2)
    assert d["valid_auc"] == 1.0 and d["valid_leads"] == 2
    assert _valid_sample(2) == f"class-balanced sample of 2 leads: too few to read, fewer than {dg.MIN_VALID_LEADS}"
    assert _valid_sample(300) == "class-balanced sample of 300 leads"
    assert _valid_sample(None) == "class-balanced sample"  # a result from before the key existed

"""HPRO: the loss by hand, pairs per tier on a hand-made batch, the tier sampler, the label-only fallback,
ablation settings, and the three bugs of the published reference implementation made impossible:
(a) tier labels never reach the loss, (b) a frozen pairwise head, (c) scoring with the BCE head only."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch
from llm_fixtures import make_split

from benchmark.registry import MethodContext, get
from feature_store.errors import ConfigError
from feature_store.validate import data_gaps
from llm_ranker.hpro import (LONG, SHORT, TIERS, HPROConfig, HPROTerm, PairSpec, TierSampler, build_pairs,
                             hpro_loss)
from llm_ranker.model import LeadRanker
from llm_ranker.scoring import apply_rule

ORDER = ("defeat", "call", "visit", "test_drive", "lock")
M = -1  # no call
TINY = {"max_length": 256, "threads": 1, "batch_size": 8, "lr_heads": 3e-3, "lr_lora": 3e-3, "pos_rate": 0.3,
        "tiny": {"vocab": 600}}


def funnel_spec(tiers=("global", "key_action", "soft_signal"), scale=1.0) -> PairSpec:
    cfg = HPROConfig(tiers=tiers, margin_scale=scale)
    return PairSpec("funnel", tiers, {t: cfg.margin(t) for t in tiers}, lock=4, defeat=0, key=3,
                    short_max=30.0, long_min=120.0, stage_order=ORDER)


def with_outcomes(split, stages, seconds):
    schema = dataclasses.replace(split.schema, final_stage_order=ORDER)
    out = pd.DataFrame({"final_stage": stages, "call_seconds": seconds})
    return dataclasses.replace(split, schema=schema, _outcomes=out)


def funnel_split(n: int):
    """``n`` leads whose outcomes cover every tier; labels = lock."""
    stages = [ORDER[i] for i in np.arange(n) % 5]
    seconds = [0 if s == "defeat" else (10 + 40 * i) % 300 for i, s in enumerate(stages)]
    return with_outcomes(make_split(n, labels=[s == "lock" for s in stages]), stages, seconds)


# ---- the loss ----------------------------------------------------------------------------------------
def test_hpro_loss_matches_a_hand_computation_with_margins_and_equal_scores():
    s_w, s_l, m = torch.tensor([2.0, 0.0, 0.0]), torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.5, 0.0, 1.0])
    # −log σ(2 − 1 − 0.5), −log σ(0 − 0 − 0) = log 2 (equal scores, no margin), −log σ(−1) = log(1 + e)
    hand = (math.log1p(math.exp(-0.5)) + math.log(2) + math.log1p(math.e)) / 3
    assert float(hpro_loss(s_w, s_l, m)) == pytest.approx(hand, abs=1e-6)
    # the margin makes a pair that is already ordered by less than m cost more
    assert float(hpro_loss(s_w[:1], s_l[:1], torch.tensor([1.0]))) > float(hpro_loss(s_w[:1], s_l[:1], torch.zeros(1)))
    # equal scores: gradient −σ(m) on the winner, +σ(m) on the loser — pushes them apart
    sw, sl = torch.zeros(1, requires_grad=True), torch.zeros(1, requires_grad=True)
    hpro_loss(sw, sl, torch.tensor([1.0])).backward()
    assert float(sw.grad) == pytest.approx(-1 / (1 + math.exp(-1))) and float(sl.grad) == -float(sw.grad)


def test_hpro_loss_without_pairs_is_zero_and_keeps_the_graph():
    s = torch.zeros(3, requires_grad=True)
    loss = hpro_loss(s[:0], s[:0], torch.zeros(0))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(s.grad, torch.zeros(3))


# ---- pairs -------------------------------------------------------------------------------------------
#            lead:  0     1   2     3      4    5      6      7     8
HAND_DEPTH = [4,    0,  3,    1,     2,   1,     0,     2,    4]
HAND_CALL = [LONG,  M,  LONG, SHORT, 1,   LONG,  SHORT, LONG, SHORT]
EXPECTED = {
    "global": {(0, 1), (0, 6), (8, 1), (8, 6)},  # lock over defeat
    "key_action": {(0, 3), (0, 4), (0, 5), (0, 7), (2, 1), (2, 3), (2, 4), (2, 5), (2, 6), (2, 7),
                   (8, 3), (8, 4), (8, 5), (8, 7)},  # reached test drive over did not (lock-defeat is global)
    # long over short call, never against the funnel: (2, 8), (5, 8), (7, 8) would put a shallower stage first
    "soft_signal": {(0, 8), (5, 3), (5, 6), (7, 3), (7, 6)},
}


def hand_targets():
    return {"label": np.array([d == 4 for d in HAND_DEPTH], dtype=np.int64),
            "stage_depth": np.array(HAND_DEPTH), "call_class": np.array(HAND_CALL)}


def pair_sets(pairs):
    return {t: {(int(w), int(l)) for w, l, k in zip(pairs.winner, pairs.loser, pairs.tier) if TIERS[k] == t}
            for t in TIERS}


def test_pair_builder_yields_exactly_the_expected_pairs_per_tier_with_their_margins():
    pairs = build_pairs(hand_targets(), funnel_spec())
    assert pair_sets(pairs) == {**EXPECTED, "label": set()}
    margins = {TIERS[k]: float(m) for k, m in zip(pairs.tier, pairs.margin)}
    assert margins == {"global": 1.0, "key_action": 0.5, "soft_signal": pytest.approx(0.1)}


def test_dropping_a_tier_removes_its_pairs_instead_of_moving_them_and_margins_can_be_zeroed():
    pairs = build_pairs(hand_targets(), funnel_spec(tiers=("key_action", "soft_signal"), scale=0.0))
    got = pair_sets(pairs)
    assert got["global"] == set() and got["key_action"] == EXPECTED["key_action"]
    assert got["soft_signal"] == EXPECTED["soft_signal"] and not pairs.margin.any()


def test_label_only_pairs_are_positive_over_negative_with_margin_one():
    spec = PairSpec("label", ("label",), {"label": 1.0})
    pairs = build_pairs({"label": np.array([1, 0, 0, 1])}, spec)
    assert pair_sets(pairs)["label"] == {(0, 1), (0, 2), (3, 1), (3, 2)} and set(pairs.margin) == {1.0}


def test_call_thresholds_are_train_quantiles_of_leads_with_a_call():
    split = with_outcomes(make_split(6), ["defeat", "call", "call", "visit", "visit", "lock"], [0, 10, 20, 30, 40, 50])
    spec = PairSpec.from_split(split, HPROConfig(soft_quantiles=(0.25, 0.75)))
    assert spec.mode == "funnel" and (spec.short_max, spec.long_min) == (20.0, 40.0)  # quantiles of 10..50
    t = spec.targets(split)
    assert t["stage_depth"].tolist() == [0, 1, 1, 2, 2, 4]
    assert t["call_class"].tolist() == [-1, SHORT, SHORT, 1, LONG, LONG]


# ---- the sampler -------------------------------------------------------------------------------------
def test_every_batch_holds_a_pair_of_every_available_tier():
    rng = np.random.default_rng(0)
    n = 400
    depth = rng.choice(3, n, p=[0.6, 0.3, 0.1])  # defeat / call / visit ...
    depth[rng.choice(n, 4, replace=False)] = 3  # ... 4 test drives ...
    depth[rng.choice(np.flatnonzero(depth < 3), 3, replace=False)] = 4  # ... and 3 locks: rare tiers
    call = np.where(depth == 0, -1, rng.choice([SHORT, 1, LONG], n))
    targets = {"label": (depth == 4).astype(np.int64), "stage_depth": depth, "call_class": call}
    sampler = TierSampler(batch_size=8, pos_rate=0.0, window=5, spec=funnel_spec())
    batches = sampler.batches(rng.integers(50, 90, n), targets, np.random.default_rng(1))
    for b in batches:
        present = set(build_pairs({k: v[b] for k, v in targets.items()}, funnel_spec()).tier.tolist())
        assert present == {0, 1, 2}
    assert sampler.stats["tiers_available"] == ["global", "key_action", "soft_signal"]
    assert sampler.stats["batches_topped_up_per_tier"]["global"] > 0  # random batches would lack it
    assert max(len(b) for b in batches) == 8 and sum(len(b) for b in batches) == n


def test_sampler_reports_a_tier_the_training_set_cannot_form():
    depth = np.array([0, 1, 2, 4] * 10)
    targets = {"label": (depth == 4).astype(np.int64), "stage_depth": depth, "call_class": np.full(40, LONG)}
    sampler = TierSampler(batch_size=8, pos_rate=0.0, window=2, spec=funnel_spec())
    sampler.batches(np.full(40, 10), targets, np.random.default_rng(0))
    assert sampler.stats["tiers_unavailable"] == ["soft_signal"]  # no short calls


# ---- configuration and ablations -----------------------------------------------------------------------
def test_config_ablations_and_refusals():
    cfg = HPROConfig.from_mapping({"tiers": ["global"], "margin_scale": 0, "margins": {"global": 2}})
    assert cfg.tiers == ("global",) and cfg.margin("global") == 0.0 and cfg.margins["key_action"] == 0.5
    for bad in ({"tiers": ["globl"]}, {"tiers": ["label", "global"]}, {"score": "vibes"}, {"lamda1": 1}):
        with pytest.raises(ConfigError):
            HPROConfig.from_mapping(bad)


@pytest.mark.parametrize("name", ["quick", "standard", "paper"])
def test_profiles_have_a_valid_hpro_section(name):
    from benchmark.profile import load_profile

    cfg = HPROConfig.from_mapping(load_profile(name).config["hpro"])
    assert cfg.tiers == ("global", "key_action", "soft_signal") and cfg.lambda1 == 1.0 and cfg.score == "pointwise"
    ablation = load_profile(name, ["hpro.tiers=[global]"]).config["hpro"]
    assert HPROConfig.from_mapping(ablation).tiers == ("global",)


# ---- bug (a): tier labels reach the loss ----------------------------------------------------------------
def test_funnel_loss_refuses_a_batch_without_tier_labels_and_unknown_stages_are_an_error():
    term = HPROTerm(funnel_spec())
    out = type("Out", (), {"heads": {"pairwise": torch.zeros(3)}})()
    with pytest.raises(KeyError, match="stage_depth"):
        term(out, {"label": torch.tensor([1, 0, 0])})
    split = with_outcomes(make_split(3), ["lock", "defeat", "booked"], [10, 0, 5])
    with pytest.raises(ConfigError, match="booked"):
        PairSpec.from_split(split, HPROConfig())


def test_tier_labels_reach_the_loss_term():
    term = HPROTerm(funnel_spec())
    scores = torch.zeros(9, requires_grad=True)
    out = type("Out", (), {"heads": {"pairwise": scores}})()
    loss = term(out, {k: torch.as_tensor(v) for k, v in hand_targets().items()})
    assert term.counts == {"global": 4, "key_action": 14, "soft_signal": 5, "label": 0}
    # all scores equal: each pair costs log(1 + e^m); the mean over the 23 pairs, by hand
    hand = (4 * math.log1p(math.e) + 14 * math.log1p(math.exp(0.5)) + 5 * math.log1p(math.exp(0.1))) / 23
    assert float(loss) == pytest.approx(hand, abs=1e-6)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """asllr_hpro on hand-made leads with an outcome funnel, scored by the pairwise head."""
    ctx = MethodContext(seed=0, config={"llm": TINY, "hpro": {"score": "pairwise"}},
                        cache_dir=str(tmp_path_factory.mktemp("cache")))
    method = get("asllr_hpro")(ctx).fit(funnel_split(60), make_split(5))
    return method, make_split(7)


def test_a_fit_sends_pairs_of_every_tier_to_the_loss(fitted):
    info = fitted[0].run_info()["hpro"]
    assert info["pairs"] == "funnel tiers" and info["tiers_available"] == ["global", "key_action", "soft_signal"]
    assert all(info["pair_counts"][t] > 0 for t in ("global", "key_action", "soft_signal"))
    assert fitted[0].run_info()["loss_terms"] == {"bce": 2.0, "hpro": 1.0, "ce": 0.5}


# ---- bug (b): the pairwise head trains ----------------------------------------------------------------
def test_the_pairwise_head_weights_change_in_training(fitted):
    norms = fitted[0].run_info()["head_update_norms"]
    assert norms["pairwise"] > 0 and norms["pointwise"] > 0


def test_a_frozen_pairwise_head_fails_the_fit(tmp_path, monkeypatch):
    original = LeadRanker.param_groups

    def without_pairwise(self, cfg):  # the reference bug: the pairwise head is not in the optimizer
        groups = original(self, cfg)
        frozen = {id(p) for p in self.heads["pairwise"].parameters()}
        return [{**g, "params": [p for p in g["params"] if id(p) not in frozen]} for g in groups]

    monkeypatch.setattr(LeadRanker, "param_groups", without_pairwise)
    ctx = MethodContext(seed=0, config={"llm": TINY}, cache_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="pairwise head"):
        get("asllr_hpro")(ctx).fit(funnel_split(24), make_split(3))


# ---- bug (c): the scoring rule is explicit ----------------------------------------------------------
def test_scores_come_from_the_configured_rule_and_it_is_recorded(fitted):
    method, test = fitted
    outputs = method.ranker.predict(test)
    assert np.array_equal(method.score(test), outputs["pairwise"].astype(np.float64))
    assert not np.allclose(outputs["pairwise"], outputs["pointwise"])
    info = method.run_info()
    assert info["scoring_rule"] == "pairwise" and "pairwise head" in info["scoring_rule_description"]
    assert info["hpro"]["score"] == "pairwise"
    default = get("asllr_hpro")(MethodContext(config={"llm": TINY}))
    assert default.cfg.score == "pointwise"  # the paper's rule, unless hpro.score says otherwise


def test_blend_is_the_sum_of_z_scored_heads():
    out = {"pointwise": np.array([1.0, 2.0, 3.0]), "pairwise": np.array([10.0, 10.0, 40.0]),
           "qa": np.array([0.0, 0.0, 0.0]), "pooled": np.zeros((3, 4))}
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    assert np.allclose(apply_rule("blend", out), z(out["pointwise"]) + z(out["pairwise"]))


# ---- label-only fallback ---------------------------------------------------------------------------
def test_label_only_fallback_on_data_without_outcomes(tmp_path):
    ctx = MethodContext(seed=0, config={"llm": TINY}, cache_dir=str(tmp_path))
    train = make_split(24, labels=np.arange(24) % 3 == 0)  # no outcome funnel
    method = get("asllr_hpro")(ctx).fit(train, make_split(3))
    info = method.run_info()["hpro"]
    assert info["pairs"].startswith("label-only") and info["tiers"] == ["label"] and info["margins"] == {"label": 1.0}
    assert info["pair_counts"]["label"] > 0 and set(info["pair_counts"]) == {"label"}
    assert np.isfinite(method.score(make_split(4))).all()
    assert any("label-only pairs" in g for g in data_gaps(True, True, has_outcomes=False, hpro=True))

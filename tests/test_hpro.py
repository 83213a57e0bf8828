"""HPRO: the loss by hand, pairs per tier on a hand-made batch, the tier sampler, the label-only fallback,
ablation settings, equal exposure (w/o and w/ HPRO train on the same batches), and the three bugs of the
published reference implementation made impossible: (a) tier labels never reach the loss, (b) a frozen
pairwise head, (c) scoring with the BCE head only."""

import dataclasses
import math

import numpy as np
import pandas as pd
import pytest
import torch

import leadrank_api as api
from llm_fixtures import make_split

from benchmark.profile import load_profile
from benchmark.registry import get
from benchmark.tables import data_gaps
from feature_store.errors import ConfigError
from feature_store.typed import parse
from llm_ranker.hpro import HPROTerm, hpro_loss
from llm_ranker.pairs import LONG, SHORT, TIERS, HPROParams, PairSpec, build_pairs
from llm_ranker.sampler import TierSampler
from llm_ranker.model import LeadRanker
from llm_ranker.pairs import FUNNEL_TIERS
from llm_ranker.scoring import apply_rule

ORDER = ("defeat", "call", "visit", "test_drive", "lock")
M = -1  # no call
TINY = {"max_length": 256, "threads": 1, "batch_size": 8, "lr_heads": 3e-3, "lr_lora": 3e-3, "pos_rate": 0.3,
        "tiny": {"vocab": 600}}


def funnel_spec(tiers=("global", "key_action", "soft_signal"), scale=1.0) -> PairSpec:
    cfg = HPROParams(tiers=tiers, margin_scale=scale)
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
    spec = PairSpec.from_split(split, HPROParams(soft_quantiles=(0.25, 0.75)))
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
    # no positive is oversampled (pos_rate 0), so no draw is spare: every top-up lead is appended
    assert sampler.stats["spare_draws_replaced"] == 0
    assert sum(len(b) for b in batches) == n + sampler.stats["top_up_leads_added"]
    assert set(np.concatenate(batches).tolist()) == set(range(n))  # every lead seen
    # a lead that pairs with a batch member is preferred to a whole pair: fewer leads than 2 per top-up
    assert sampler.stats["top_up_leads_added"] < 2 * sum(sampler.stats["batches_topped_up_per_tier"].values())


def test_top_ups_replace_only_spare_draws_so_every_lead_is_seen():
    """Top-up leads take the slots of repeated (oversampled) positives, never a lead's only draw."""
    rng = np.random.default_rng(3)
    n = 600
    depth = rng.choice(4, n, p=[0.5, 0.3, 0.15, 0.05])
    depth[rng.choice(n, 12, replace=False)] = 4  # 2 % locks, oversampled to 20 % of the draws
    call = np.where(depth == 0, -1, rng.choice([SHORT, 1, LONG], n))
    targets = {"label": (depth == 4).astype(np.int64), "stage_depth": depth, "call_class": call}
    for batch_size in (4, 8):
        sampler = TierSampler(batch_size=batch_size, pos_rate=0.2, window=5, spec=funnel_spec())
        batches = sampler.batches(rng.integers(50, 90, n), targets, np.random.default_rng(1))
        assert set(np.concatenate(batches).tolist()) == set(range(n))
        assert sampler.stats["spare_draws_replaced"] > 0  # repeats of positives made room
        for b in batches:
            assert set(build_pairs({k: v[b] for k, v in targets.items()}, funnel_spec()).tier.tolist()) == {0, 1, 2}


def test_sampler_reports_a_tier_the_training_set_cannot_form():
    depth = np.array([0, 1, 2, 4] * 10)
    targets = {"label": (depth == 4).astype(np.int64), "stage_depth": depth, "call_class": np.full(40, LONG)}
    sampler = TierSampler(batch_size=8, pos_rate=0.0, window=2, spec=funnel_spec())
    sampler.batches(np.full(40, 10), targets, np.random.default_rng(0))
    assert sampler.stats["tiers_unavailable"] == ["soft_signal"]  # no short calls


# ---- configuration and ablations -----------------------------------------------------------------------
def test_config_ablations_and_refusals():
    cfg = parse(HPROParams, {"tiers": ["global"], "margin_scale": 0, "margins": {"global": 2}})
    assert cfg.tiers == ("global",) and cfg.margin("global") == 0.0 and cfg.margins["key_action"] == 0.5
    for bad in ({"tiers": ["globl"]}, {"tiers": ["label", "global"]}, {"score": "pairwise"}, {"lamda1": 1}):
        with pytest.raises(ConfigError):
            parse(HPROParams, bad, section="hpro")


@pytest.mark.parametrize("name", ["quick", "standard", "paper"])
def test_profiles_have_a_valid_hpro_section(name):
    cfg = parse(HPROParams, load_profile(name).config["hpro"])
    assert cfg.tiers == ("global", "key_action", "soft_signal") and cfg.lambda1 == 1.0
    ablation = load_profile(name, ["hpro.tiers=[global]"]).config["hpro"]
    assert parse(HPROParams, ablation).tiers == ("global",)


def test_ablation_variants_fix_their_setting_over_the_profile():
    profile = load_profile("quick", ["hpro.tiers=[global]", "hpro.lambda1=2"])
    settings = api.method_settings(get("hpro_no_global"), profile.config)["hpro"]
    assert settings.tiers == ("key_action", "soft_signal") and settings.lambda1 == 2.0
    assert not get("hpro_no_global").by_default and get("hpro_label_only").overrides == {"hpro": {"tiers": ["label"]}}


# ---- bug (a): tier labels reach the loss ----------------------------------------------------------------
def test_funnel_loss_refuses_a_batch_without_tier_labels_and_unknown_stages_are_an_error():
    term = HPROTerm(funnel_spec())
    out = type("Out", (), {"heads": {"pairwise": torch.zeros(3)}})()
    with pytest.raises(KeyError, match="stage_depth"):
        term(out, {"label": torch.tensor([1, 0, 0])})
    split = with_outcomes(make_split(3), ["lock", "defeat", "booked"], [10, 0, 5])
    with pytest.raises(ConfigError, match="booked"):
        PairSpec.from_split(split, HPROParams())


def test_tier_labels_reach_the_loss_term():
    term = HPROTerm(funnel_spec())
    scores = torch.zeros(9, requires_grad=True)
    out = type("Out", (), {"heads": {"pairwise": scores}})()
    loss = term(out, {k: torch.as_tensor(v) for k, v in hand_targets().items()})
    assert term.counts == {"global": 4, "key_action": 14, "soft_signal": 5, "label": 0}
    # all scores equal: each pair costs log(1 + e^m); the mean over the 23 pairs, by hand
    hand = (4 * math.log1p(math.e) + 14 * math.log1p(math.exp(0.5)) + 5 * math.log1p(math.exp(0.1))) / 23
    assert float(loss.detach()) == pytest.approx(hand, abs=1e-6)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """asllr_hpro on hand-made leads with an outcome funnel, scored by the pairwise head."""
    method = get("asllr_hpro").from_config({"llm": {**TINY, "score": "pairwise"}},
                                           cache_dir=str(tmp_path_factory.mktemp("cache")))
    method.fit(funnel_split(60), make_split(5))
    return method, make_split(7)


def test_a_fit_sends_pairs_of_every_tier_to_the_loss(fitted):
    info = fitted[0].run_info()["hpro"]
    batches = fitted[0].run_info()["batches"]
    assert info["pairs"] == "funnel tiers" and batches["tiers_available"] == ["global", "key_action", "soft_signal"]
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
    method = get("asllr_hpro").from_config({"llm": TINY}, cache_dir=str(tmp_path))
    with pytest.raises(RuntimeError, match="pairwise head"):
        method.fit(funnel_split(24), make_split(3))


# ---- bug (c): the scoring rule is explicit ----------------------------------------------------------
def test_scores_come_from_the_configured_rule_and_it_is_recorded(fitted):
    method, test = fitted
    outputs = method.ranker.predict(test)
    assert np.array_equal(method.score(test), outputs["pairwise"].astype(np.float64))
    assert not np.allclose(outputs["pairwise"], outputs["pointwise"])
    info = method.run_info()
    assert info["scoring_rule"] == "pairwise" and "pairwise head" in info["scoring_rule_description"]
    assert info["llm"]["score"] == "pairwise"
    default = get("asllr_hpro").from_config({"llm": TINY})
    assert default.cfg.score == "pointwise"  # the paper's rule, unless llm.score says otherwise


def test_blend_is_the_sum_of_z_scored_heads():
    out = {"pointwise": np.array([1.0, 2.0, 3.0]), "pairwise": np.array([10.0, 10.0, 40.0]),
           "qa": np.array([0.0, 0.0, 0.0]), "pooled": np.zeros((3, 4))}
    z = lambda x: (x - x.mean()) / x.std()  # noqa: E731
    assert np.allclose(apply_rule("blend", out), z(out["pointwise"]) + z(out["pairwise"]))


# ---- label-only fallback ---------------------------------------------------------------------------
def test_label_only_fallback_on_data_without_outcomes(tmp_path):
    method = get("asllr_hpro").from_config({"llm": TINY}, cache_dir=str(tmp_path))
    train = make_split(24, labels=np.arange(24) % 3 == 0)  # no outcome funnel
    method.fit(train, make_split(3))
    info = method.run_info()["hpro"]
    assert info["pairs"].startswith("label-only") and info["tiers"] == ["label"] and info["margins"] == {"label": 1.0}
    assert info["pair_counts"]["label"] > 0 and set(info["pair_counts"]) == {"label"}
    assert np.isfinite(method.score(make_split(4))).all()
    assert any("label-only pairs" in g for g in data_gaps(True, True, has_outcomes=False, hpro=True))


# ---- equal exposure: w/o and w/ HPRO (and the ablations) train on the same batches ---------------------
EXPOSURE_ROWS = ("asllr_base", "asllr_ce", "asllr_hpro", "hpro_no_global", "hpro_label_only", "asllr_ce_lora_all")
PAPER_BATCHES = {**TINY, "batch_size": 4, "pos_rate": 0.1}  # the paper profile's batch 4 and pos_rate 0.1


def fit_recording_batches(method, train, monkeypatch):
    """Fit ``method`` and return the batches its sampler handed the trainer."""
    seen = []
    original = TierSampler.batches

    def recording(self, lengths, targets, rng):
        out = original(self, lengths, targets, rng)
        seen.append([b.copy() for b in out])
        return out

    monkeypatch.setattr(TierSampler, "batches", recording)
    method.fit(train, make_split(3))
    monkeypatch.setattr(TierSampler, "batches", original)
    assert len(seen) == 1
    return seen[0]


def build(name, cache, llm=PAPER_BATCHES, hpro=None):
    return get(name).from_config({"llm": llm, **({"hpro": hpro} if hpro else {})}, seed=0, cache_dir=str(cache))


def exposure_split(n: int = 80):
    """Leads with an outcome funnel and 5 % positives (below pos_rate, so positives are oversampled)."""
    stages = np.array([ORDER[i] for i in np.arange(n) % 4], dtype=object)  # defeat, call, visit, test_drive
    stages[::20] = "lock"
    seconds = [0 if s == "defeat" else (10 + 40 * i) % 300 for i, s in enumerate(stages)]
    return with_outcomes(make_split(n, labels=stages == "lock"), list(stages), seconds)


@pytest.fixture(scope="module")
def exposure_fits(tmp_path_factory):
    """Every LLM row and three ablations fit with seed 0 on the same leads (the whole split: no subsample),
    under a profile with top-1 LoRA (which asllr_ce_lora_all overrides: LoRA in both blocks)."""
    train, cache = exposure_split(), tmp_path_factory.mktemp("cache")
    llm = {**PAPER_BATCHES, "lora_layers": 1}
    with pytest.MonkeyPatch.context() as mp:
        fits = {name: (m := build(name, cache, llm), fit_recording_batches(m, train, mp)) for name in EXPOSURE_ROWS}
    return train, fits


def test_with_and_without_hpro_train_on_the_same_leads_in_the_same_batches(exposure_fits):
    train, fits = exposure_fits
    (ce, ce_batches), (hpro, hpro_batches) = fits["asllr_ce"], fits["asllr_hpro"]
    # the same batch index sequence, hence the same batch sizes and positive shares
    assert len(ce_batches) == len(hpro_batches)
    assert all(np.array_equal(a, b) for a, b in zip(ce_batches, hpro_batches))
    y = train.y
    assert [len(b) for b in ce_batches] == [len(b) for b in hpro_batches]
    assert [int(y[b].sum()) for b in ce_batches] == [int(y[b].sum()) for b in hpro_batches]
    # the recorded exposure is equal too, and says what the runs saw
    exp_ce, exp_hpro = ce.run_info()["train_exposure"], hpro.run_info()["train_exposure"]
    assert exp_ce == exp_hpro
    draws = np.concatenate(ce_batches)
    assert exp_ce["leads"] == len(np.unique(draws)) == len(train)  # every training lead, for both
    assert exp_ce["positives"] == int(y[np.unique(draws)].sum()) == 4
    assert exp_ce["steps"] == ce.run_info()["optimizer_steps"] == len(ce_batches)  # grad_accum 1
    assert exp_ce["draws"] == len(draws) and exp_ce["positive_draw_share"] == round(float(y[draws].mean()), 4)
    # ... and only the loss differs
    assert ce.run_info()["loss_terms"] == {"bce": 2.0, "ce": 0.5}
    assert hpro.run_info()["loss_terms"] == {"bce": 2.0, "hpro": 1.0, "ce": 0.5}


def test_every_llm_row_and_ablation_shares_the_batches_and_their_tier_guarantee(exposure_fits):
    train, fits = exposure_fits
    ce = fits["asllr_ce"][0]
    for name, (method, batches) in fits.items():
        assert method.run_info()["train_exposure"] == ce.run_info()["train_exposure"], name
        assert method.run_info()["batches"] == ce.run_info()["batches"], name
        assert all(np.array_equal(a, b) for a, b in zip(batches, fits["asllr_ce"][1])), name
    assert ce.run_info()["batches"]["pairs"] == "funnel tiers"
    assert ce.run_info()["batches"]["tiers_available"] == list(FUNNEL_TIERS)
    # every batch holds a pair of every funnel tier — for asLLR w/o HPRO too (the sampler's guarantee)
    targets = ce.training_targets(train)
    for b in fits["asllr_ce"][1]:
        assert set(build_pairs({k: v[b] for k, v in targets.items()}, ce.batch_spec).tier.tolist()) == {0, 1, 2}
    # the ablations' losses take only their tiers' pairs of those batches
    assert "global" not in fits["hpro_no_global"][0].run_info()["hpro"]["pair_counts"]
    assert set(fits["hpro_label_only"][0].run_info()["hpro"]["pair_counts"]) == {"label"}
    # the LoRA-placement check (bench/lora_layers_auc.py) differs from asllr_ce in where LoRA sits, not in its loss
    assert isinstance(fits["asllr_ce_lora_all"][0], type(ce))  # asllr_ce with one setting fixed
    every, top = fits["asllr_ce_lora_all"][0].run_info(), ce.run_info()
    assert (every["llm"]["lora_layers"], top["llm"]["lora_layers"]) == (None, 1)
    assert every["trainable_params"] > top["trainable_params"] and every["loss_terms"] == top["loss_terms"]


def test_without_an_outcome_funnel_every_llm_row_batches_by_label_pairs(tmp_path, monkeypatch):
    train = make_split(30, labels=np.arange(30) % 5 == 0)  # no outcome funnel
    ce, hpro = build("asllr_ce", tmp_path), build("asllr_hpro", tmp_path)
    ce_batches = fit_recording_batches(ce, train, monkeypatch)
    hpro_batches = fit_recording_batches(hpro, train, monkeypatch)
    assert len(ce_batches) == len(hpro_batches)
    assert all(np.array_equal(a, b) for a, b in zip(ce_batches, hpro_batches))
    assert ce.run_info()["train_exposure"] == hpro.run_info()["train_exposure"]
    assert ce.run_info()["batches"]["pairs"].startswith("label pairs")
    assert all(0 < train.y[b].sum() < len(b) for b in ce_batches)  # a label pair in every batch


def test_hpro_settings_that_shape_only_the_loss_leave_the_batches_alone(tmp_path, monkeypatch):
    """tiers, margins and lambda1 choose the loss; key_stage and the call thresholds define the tiers."""
    train = exposure_split(40)
    paper = fit_recording_batches(build("asllr_hpro", tmp_path), train, monkeypatch)
    loss_only = fit_recording_batches(build("asllr_hpro", tmp_path, hpro={"lambda1": 3.0, "margin_scale": 0.0,
                                                                          "tiers": ["global"]}), train, monkeypatch)
    assert len(paper) == len(loss_only) and all(np.array_equal(a, b) for a, b in zip(paper, loss_only))

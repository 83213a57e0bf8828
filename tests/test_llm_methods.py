"""asLLR methods: configuration, training subsample, scoring rules, table-only data, run_info."""

import numpy as np
import pytest
from llm_fixtures import make_split

from benchmark import runner
from benchmark.profile import load_profile
from benchmark.registry import get
from feature_store.errors import ConfigError
from feature_store.typed import parse
from llm_ranker.config import LLMParams
from llm_ranker.ranker import subsample
from llm_ranker.scoring import apply_rule

TINY = {"max_length": 256, "threads": 1, "batch_size": 8, "lr_heads": 3e-3, "lr_lora": 3e-3, "pos_rate": 0.3,
        "tiny": {"vocab": 600}}


def test_config_is_typed_and_refuses_unknown_keys():
    assert parse(LLMParams, {"lr_heads": 1, "tiny": {"hidden": 32}}).tiny.hidden == 32
    with pytest.raises(ConfigError, match=r"unknown key 'llm.max_lenght' \(did you mean 'max_length'"):
        parse(LLMParams, {"max_lenght": 10}, section="llm")
    with pytest.raises(ConfigError, match=r"llm.lr_heads = \"1e-3\": input should be a valid number"):
        parse(LLMParams, {"lr_heads": "1e-3"}, section="llm")


def test_subsample_keeps_every_positive_that_fits_and_is_seeded():
    split = make_split(200, labels=[1] * 10 + [0] * 190)
    part = subsample(split, 50, seed=0)
    assert len(part) == 50 and part.y.sum() == 10
    assert np.array_equal(part.ids, subsample(split, 50, seed=0).ids)
    assert not np.array_equal(part.ids, subsample(split, 50, seed=1).ids)


def test_subsample_gives_positives_at_most_half_when_they_are_many():
    part = subsample(make_split(100, labels=[1] * 60 + [0] * 40), 20, seed=0)
    assert len(part) == 20 and part.y.sum() == 10


def test_scoring_rules_read_the_named_outputs():
    outputs = {"pointwise": np.array([0.1, 0.9]), "qa": np.array([2.0, -1.0])}
    assert list(apply_rule("pointwise", outputs)) == [0.1, 0.9] and list(apply_rule("qa", outputs)) == [2.0, -1.0]
    with pytest.raises(ConfigError, match="needs output"):
        apply_rule("pointwise", {"qa": outputs["qa"]})
    with pytest.raises(ConfigError, match="unknown scoring rule"):
        get("asllr_ce").from_config({"llm": {"score": "vibes"}})
    with pytest.raises(ConfigError, match="no pairwise head"):
        get("asllr_ce").from_config({"llm": {"score": "pairwise"}})


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """asllr_ce fit on table-only hand-made leads (no text column), scored by the qa rule."""
    method = get("asllr_ce").from_config({"llm": {**TINY, "score": "qa", "train_max_leads": 40}},
                                         cache_dir=str(tmp_path_factory.mktemp("cache")))
    train = make_split(60, with_text=False, labels=np.arange(60) % 4 == 0)
    method.fit(train, make_split(5, with_text=False))
    return method, method.score(make_split(7, with_text=False))


def test_table_only_data_trains_and_scores(fitted):
    method, scores = fitted
    assert scores.shape == (7,) and np.isfinite(scores).all()
    assert method.run_info()["prompt_parts"] == "table-only" and method.run_info()["summarizer"] is None
    assert method.inputs(make_split(1, with_text=False).schema).text == "none"


def test_run_info_records_rule_backbone_losses_and_subsample(fitted):
    info = fitted[0].run_info()
    assert info["scoring_rule"] == "qa" and "P(' Yes')" in info["scoring_rule_description"]
    assert info["backbone"] == "tiny" and info["architecture"] == "Qwen2ForCausalLM"
    assert info["loss_terms"] == {"bce": 2.0, "ce": 0.5}
    assert info["train_leads"] == 40 and info["train_positives"] == 15 and info["train_split_leads"] == 60
    assert info["llm"]["max_length"] == 256 and info["dtype"] in ("float32", "bfloat16")


def test_run_info_records_train_exposure_and_the_shared_batches(fitted):
    info = fitted[0].run_info()
    exposure = info["train_exposure"]
    assert exposure["leads"] == 40 and exposure["positives"] == 15  # every lead of the subsample, once at least
    assert exposure["steps"] == info["optimizer_steps"] and exposure["batches"] == info["train_batches"]
    assert exposure["draws"] == info["train_draws"] and len(exposure["batch_sequence_sha256"]) == 16
    # no outcome funnel: the tier-aware sampler falls back to label pairs (a positive and a negative per batch)
    assert info["batches"]["pairs"].startswith("label pairs") and info["batches"]["tiers_available"] == ["label"]


def llm_section(profile):
    return parse(LLMParams, profile.config.get("llm"), section="llm")


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_profile_llm_sections_are_valid(name):
    cfg = llm_section(load_profile(name))
    assert cfg.backbone == {"quick": "tiny", "standard": "smollm2-135m"}[name] and cfg.train_max_leads


def test_paper_profile_needs_a_local_backbone_and_keeps_the_papers_settings():
    paper = load_profile("paper")
    with pytest.raises(ConfigError, match="llm.backbone"):
        runner.plan(paper, methods=["logreg", "asllr_ce"])  # refused before any job runs
    assert {j.method for j in runner.plan(paper, methods=["logreg"])} == {"logreg"}
    cfg = llm_section(load_profile("paper", ["llm.backbone=/models/qwen"]))
    assert (cfg.backbone, cfg.lora_rank, cfg.head_dropout, cfg.epochs) == ("/models/qwen", 16, 0.5, 1)
    assert cfg.lr_lora * 20 == pytest.approx(cfg.lr_heads) == 5e-5 and cfg.train_max_leads is None


def test_a_job_killed_while_scoring_does_not_train_again(tmp_path, data_dir, monkeypatch):
    """The trained weights outlive a kill after fit and go once the result is written."""
    from benchmark.contract import contract_profile, tiny_entry
    from llm_ranker.methods import AsLLR

    profile = contract_profile(data_dir, ["llm.train_max_leads=64", "llm.threads=1", "llm.checkpoint_every=1",
                                          f"data_dir={tmp_path / 'data'}"])
    job, out = runner.Job(tiny_entry("table1", leads=1500), "asllr_base", 0), tmp_path / "results"
    score = AsLLR.score

    def killed(self, test):
        raise KeyboardInterrupt
    monkeypatch.setattr(AsLLR, "score", killed)
    with pytest.raises(KeyboardInterrupt):
        runner.run_job(job, profile, out)
    kept = list((profile.cache_dir / "llm_checkpoints").glob("*/state.pt"))
    assert len(kept) == 1
    monkeypatch.setattr(AsLLR, "score", score)
    resumed = runner.run_job(job, profile, out)
    assert resumed.status == "ok" and resumed.info["resumed_from_batch"] == resumed.info["train_batches"] > 0
    assert not kept[0].exists()  # gone with the result written
    fresh = runner.run_job(job, profile, out, force=True)  # trains from the start
    assert fresh.info["resumed_from_batch"] == 0
    assert fresh.info["train_exposure"] == resumed.info["train_exposure"]
    assert fresh.metrics["auc"]["value"] == pytest.approx(resumed.metrics["auc"]["value"], abs=1e-3)
    # every LLM result carries its diagnostics; the training loss survives the kept weights
    diag, kept_diag = fresh.info["diagnostics"], resumed.info["diagnostics"]
    assert {"loss_by_tenth", "valid_auc", "spearman_prompt_tokens", "within_stage_auc"} <= set(diag)
    tenths = [x for x in diag["loss_by_tenth"] if x is not None]  # a tenth with no batch is None
    assert len(diag["loss_by_tenth"]) == 10 and len(tenths) == min(10, fresh.info["train_batches"])
    assert kept_diag["loss_by_tenth"] == pytest.approx(diag["loss_by_tenth"], abs=1e-3)
    assert 0 <= diag["valid_auc"] <= 1 and -1 <= diag["spearman_prompt_tokens"] <= 1
    assert diag["valid_leads"] > 0 and diag["valid_leads"] % 2 == 0  # the balanced sample it was measured on
    assert set(diag["within_stage_auc"]) <= {"new", "contacted", "visited", "test_drive"}

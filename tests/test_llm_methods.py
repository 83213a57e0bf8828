"""asLLR methods: configuration, training subsample, scoring rules, table-only data, run_info."""

import numpy as np
import pytest
from llm_fixtures import make_split

from benchmark.registry import MethodContext, get
from feature_store.errors import ConfigError
from llm_ranker.config import LLMConfig
from llm_ranker.ranker import subsample
from llm_ranker.scoring import apply_rule

TINY = {"max_length": 256, "threads": 1, "batch_size": 8, "lr_heads": 3e-3, "lr_lora": 3e-3, "pos_rate": 0.3,
        "tiny": {"vocab": 600}}


def test_config_reads_yaml_strings_and_refuses_unknown_keys():
    assert LLMConfig.from_mapping({"lr_heads": "1e-3"}).lr_heads == 1e-3  # YAML reads 1e-3 as a string
    assert LLMConfig.from_mapping({"tiny": {"hidden": 32}}).tiny.hidden == 32
    with pytest.raises(ConfigError, match="unknown llm"):
        LLMConfig.from_mapping({"max_lenght": 10})


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
        get("asllr_ce")(MethodContext(config={"llm": {"score": "vibes"}}))


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """asllr_ce fit on table-only hand-made leads (no text column), scored by the qa rule."""
    ctx = MethodContext(seed=0, config={"llm": {**TINY, "score": "qa", "train_max_leads": 40}},
                        cache_dir=str(tmp_path_factory.mktemp("cache")))
    train = make_split(60, with_text=False, labels=np.arange(60) % 4 == 0)
    method = get("asllr_ce")(ctx).fit(train, make_split(5, with_text=False))
    return method, method.score(make_split(7, with_text=False))


def test_table_only_data_trains_and_scores(fitted):
    method, scores = fitted
    assert scores.shape == (7,) and np.isfinite(scores).all()
    assert method.run_info()["inputs"] == "table-only" and method.run_info()["summarizer"] is None


def test_run_info_records_rule_backbone_losses_and_subsample(fitted):
    info = fitted[0].run_info()
    assert info["scoring_rule"] == "qa" and "P(' Yes')" in info["scoring_rule_description"]
    assert info["backbone"] == "tiny" and info["architecture"] == "Qwen2ForCausalLM"
    assert info["loss_terms"] == {"bce": 2.0, "ce": 0.5}
    assert info["train_leads"] == 40 and info["train_positives"] == 15 and info["train_split_leads"] == 60
    assert info["llm"]["max_length"] == 256 and info["dtype"] in ("float32", "bfloat16")


@pytest.mark.parametrize("name", ["quick", "standard"])
def test_profile_llm_sections_are_valid(name):
    from benchmark.profile import load_profile

    cfg = LLMConfig.from_config(load_profile(name).config)
    assert cfg.backbone == {"quick": "tiny", "standard": "smollm2-135m"}[name] and cfg.train_max_leads


def test_paper_profile_needs_a_local_backbone_and_keeps_the_papers_settings():
    from benchmark.profile import load_profile

    with pytest.raises(ConfigError, match="llm.backbone"):
        LLMConfig.from_config(load_profile("paper").config)
    cfg = LLMConfig.from_config(load_profile("paper", ["llm.backbone=/models/qwen"]).config)
    assert (cfg.backbone, cfg.lora_rank, cfg.head_dropout, cfg.epochs) == ("/models/qwen", 16, 0.5, 1)
    assert cfg.lr_lora * 20 == pytest.approx(cfg.lr_heads) == 5e-5 and cfg.train_max_leads is None

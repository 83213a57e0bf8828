"""bench/llm_small_n.py's candidate: the frozen state the fine-tune's heads would read (``LLMRanker.untrained``),
probed by a logistic regression whose C is chosen by cross-validation on the training leads alone."""

import numpy as np
import torch
from bench_scripts import load_bench
from llm_fixtures import make_split

from llm_ranker.backbones import backbone_dir
from llm_ranker.config import LLMParams
from llm_ranker.prompt import PromptBuilder
from llm_ranker.ranker import LLMRanker
from llm_ranker.summarizer import ExtractiveSummarizer
from feature_store.typed import parse

TEXTS = ["Customer: I already paid a deposit to another brand.",
         "Customer: Please confirm my test drive on Saturday, I want to pick the car up next week.",
         "Customer: Can I pay in instalments? What are the financing options?"]


def _bench():
    return load_bench("llm_small_n")


def test_untrained_pools_the_configured_readout_by_hand(tmp_path):
    """The pooled state is the mean over the prompt's tokens after block 1 (of 2) through the final norm,
    computed here with the plain transformers model; the zero-shot ranker (whole backbone) reads another."""
    from transformers import AutoModelForCausalLM

    cfg = parse(LLMParams, {"backbone": "tiny", "tiny": {"vocab": 600}, "max_length": 256, "threads": 1,
                            "readout_layer": 1, "pooling": "mean"}, section="llm")
    split = make_split(40)
    corpus = [p.render() for p in PromptBuilder(split.schema, ExtractiveSummarizer()).parts(split)]
    path = backbone_dir(cfg, tmp_path, corpus)
    test = make_split(3, texts=TEXTS)
    ranker = LLMRanker(cfg, tmp_path, 0, terms=[], sampler=None, backbone_dir=path).untrained(test.schema)
    pooled = ranker.predict(test)["pooled"]
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    by_hand = []
    for ids in ranker.token_ids(test):
        with torch.no_grad():
            state = lm(input_ids=torch.tensor([ids]), output_hidden_states=True).hidden_states[1]
            by_hand.append(lm.get_decoder().norm(state)[0].mean(0).numpy())
    np.testing.assert_allclose(pooled, np.stack(by_hand), rtol=1e-4, atol=1e-4)
    whole = LLMRanker(cfg, tmp_path, 0, terms=[], sampler=None, backbone_dir=path).zero_shot(test.schema)
    assert not np.allclose(whole.predict(test)["pooled"], pooled, atol=1e-3)


def test_cv_probe_chooses_c_on_the_training_leads_it_is_given():
    """One informative column among noise: the CV AUC sees it and the refit ranks new leads by it; pure
    noise gets a CV AUC near chance, which is what a reader of the report must see."""
    bench = _bench()
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(15), np.zeros(985)].astype(int)
    x = rng.normal(size=(1000, 50))
    x[:, 0] += 2.5 * y
    fit, c, cv_auc = bench.cv_probe(x, y, seed=0)
    assert c in bench.CS and cv_auc > 0.8
    new = rng.normal(size=(400, 50))
    new_y = (np.arange(400) < 40).astype(int)
    new[:, 0] += 2.5 * new_y
    from sklearn.metrics import roc_auc_score
    assert roc_auc_score(new_y, fit.decision_function(new)) > 0.9
    _, _, noise_auc = bench.cv_probe(rng.normal(size=(1000, 50)), y, seed=0)
    assert abs(noise_auc - 0.5) < 0.2

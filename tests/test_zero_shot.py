"""The LLM rows' zero-shot point (a learning curve's n = 0): the untrained backbone's QA rule, nothing trained."""

import numpy as np
import pytest
import torch
from llm_fixtures import make_split

from llm_ranker import ranker as ranker_module
from llm_ranker.backbones import backbone_dir
from llm_ranker.prompt import PromptBuilder
from llm_ranker.summarizer import ExtractiveSummarizer
from benchmark.registry import get

TEXTS = ["Customer: I already paid a deposit to another brand.",
         "Customer: Please confirm my test drive on Saturday, I want to pick the car up next week.",
         "Customer: Can I pay in instalments? What are the financing options?"]


@pytest.fixture(scope="module")
def zero_shot(tmp_path_factory):
    """asllr_ce fitted on no lead, on a tiny backbone built from hand-made prompts; the leads it scores.
    Its heads read block 1 of 2 (``readout_layer``), which the QA rule must ignore: the by-hand check
    below runs the whole backbone."""
    cache = tmp_path_factory.mktemp("zs")
    method = get("asllr_ce").from_config({"llm": {"backbone": "tiny", "tiny": {"vocab": 600}, "max_length": 256,
                                                  "threads": 1, "readout_layer": 1, "pooling": "mean"}}, cache_dir=str(cache))
    corpus_split = make_split(40)
    corpus = [p.render() for p in PromptBuilder(corpus_split.schema, ExtractiveSummarizer()).parts(corpus_split)]
    path = backbone_dir(method.cfg, cache, corpus)
    train = make_split(3).take(np.arange(0))
    patch = pytest.MonkeyPatch()
    patch.setattr(ranker_module, "Trainer", _NoTrainer)  # nothing may build a trainer at n = 0
    try:
        method.share_backbone(path).fit(train, train)
    finally:
        patch.undo()
    test = make_split(3, texts=TEXTS)
    return method, path, test, method.score(test)


class _NoTrainer:
    def __init__(self, *args, **kwargs):
        raise AssertionError("a zero-shot fit built a Trainer")


def test_zero_shot_scores_are_the_backbones_qa_rule_by_hand(zero_shot):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    method, path, test, scores = zero_shot
    lm = AutoModelForCausalLM.from_pretrained(path).eval()
    tok = AutoTokenizer.from_pretrained(path)
    yes, no = (tok(a, add_special_tokens=False)["input_ids"][0] for a in (" Yes", " No"))
    by_hand = []
    for ids in method.ranker.token_ids(test):
        with torch.no_grad():
            logp = torch.log_softmax(lm(input_ids=torch.tensor([ids])).logits[0, -1].float(), dim=-1)
        by_hand.append(float(logp[yes] - logp[no]))
    assert len(set(np.round(by_hand, 6))) == 3  # the leads differ, so the check can tell them apart
    np.testing.assert_allclose(scores, by_hand, rtol=1e-4, atol=1e-4)
    # the pointwise head (the profile's llm.score) is untrained noise: not what a zero-shot point reports
    assert not np.allclose(method.ranker.predict(test)["pointwise"], by_hand, atol=1e-3)


def test_zero_shot_trains_nothing_and_says_so(zero_shot):
    method, _, test, scores = zero_shot
    info = method.run_info()
    assert info["scoring_rule"] == "qa" and method.cfg.score == "pointwise" and "zero_shot" in info
    assert info["train_exposure"]["leads"] == 0 and info["train_exposure"]["steps"] == 0
    assert info["optimizer_steps"] == 0 and info["train_leads"] == 0 and info["loss_terms"] == {}
    diag = method.diagnostics(test, scores, np.array([0, 1, 0]))
    assert diag["loss_by_tenth"] == [None] * 10 and diag["valid_auc"] is None
    method.close()  # no kept weights to delete: must not fail

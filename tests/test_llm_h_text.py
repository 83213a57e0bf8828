"""The ``asllr`` h_text provider: cross-fitting, the leaky variant, wiring, no network, one backbone build
(tokenizer and init) for every fold model and the full model."""

import numpy as np
import pytest
import torch
from llm_fixtures import make_split

from benchmark.contract import no_network
from feature_store.embeddings import get_provider
from feature_store.sampling import stratified_folds
from llm_ranker.backbones import backbone_dir
from llm_ranker.h_text import AsLLRProvider, crossfit_embed
from llm_ranker.prompt import PromptBuilder
from llm_ranker.ranker import shared_backbone, tokenizer_corpus
from llm_ranker.summarizer import make_summarizer


class Recorder:
    """Fake fit/embed: remembers which leads each model trained on and which it embedded."""

    def __init__(self):
        self.trained_on: list[set] = []
        self.embedded: list[tuple[int, set]] = []

    def fit(self, split):
        self.trained_on.append(set(split.ids.tolist()))
        return len(self.trained_on) - 1

    def embed(self, model, split):
        self.embedded.append((model, set(split.ids.tolist())))
        return np.full((len(split), 3), float(model), dtype=np.float32)


def test_crossfit_never_embeds_a_lead_with_a_model_that_trained_on_it():
    split = make_split(40, labels=[1] * 8 + [0] * 32)
    rec = Recorder()
    vecs = crossfit_embed(split, rec.fit, rec.embed, folds=3, seed=0)
    assert len(rec.trained_on) == 3
    for model, ids in rec.embedded:
        assert not ids & rec.trained_on[model]
    covered = set().union(*(ids for _, ids in rec.embedded))
    assert covered == set(split.ids.tolist()) and vecs.shape == (40, 3)
    for model, ids in rec.embedded:  # each lead's vector is its own fold model's
        assert np.all(vecs[sorted(ids), 0] == model)


def test_folds_are_label_stratified():
    labels = np.array([1] * 10 + [0] * 90)
    fold = stratified_folds(labels, 2, seed=0)
    assert [int(labels[fold == k].sum()) for k in (0, 1)] == [5, 5]


@pytest.mark.parametrize("crossfit", [True, False])
def test_provider_embeds_train_by_crossfit_and_valid_test_by_the_full_model(crossfit, monkeypatch, tmp_path):
    rec = Recorder()
    provider = get_provider("asllr")({"data_dir": str(tmp_path), "h_text": {"crossfit": crossfit, "folds": 2},
                                      "llm": {"tiny": {"vocab": 600}}}, seed=0)
    assert isinstance(provider, AsLLRProvider)
    assert ("cross-fitted" in provider.description) == crossfit and ("LEAKY" in provider.description) != crossfit

    class Model:
        def __init__(self, split):
            self.i = rec.fit(split)

        def embed(self, split):
            assert self.i not in closed, "a model embedded after it was closed"
            return rec.embed(self.i, split)

        def close(self):  # deletes its kept weights
            closed.append(self.i)
    closed: list[int] = []
    monkeypatch.setattr(provider, "_fit", Model)
    train, valid, test = make_split(30, labels=[1] * 6 + [0] * 24), make_split(5), make_split(7)
    with no_network():
        tr, va, te = provider.embed(train, valid, test)
    assert tr.shape == (30, 3) and va.shape == (5, 3) and te.shape == (7, 3)
    full = 0  # the first model is fit on the whole train split
    assert rec.trained_on[full] == set(train.ids.tolist())
    assert np.all(va == full) and np.all(te == full)
    if crossfit:
        assert not np.any(tr == full) and len(rec.trained_on) == 3
    else:
        assert np.all(tr == full) and len(rec.trained_on) == 1
    assert provider.settings()["crossfit"] is crossfit
    assert sorted(closed) == list(range(len(rec.trained_on)))  # every model, once


def test_provider_end_to_end_on_a_tiny_world(tiny_splits, tmp_path, monkeypatch):
    """Real tiny-backbone fold models on a few leads: shapes, finiteness, no network — and one tokenizer
    and one random init for the fold models and the full model, built from the whole train split."""
    _, splits = tiny_splits
    config = {"data_dir": str(tmp_path), "h_text": {"folds": 2},
              "llm": {"train_max_leads": 64, "max_length": 256, "threads": 1, "batch_size": 16}}
    provider = get_provider("asllr")(config, seed=0)
    models, fit = [], provider._fit
    monkeypatch.setattr(provider, "_fit", lambda split: models.append(fit(split)) or models[-1])
    train = splits.train.take(np.arange(200))
    with no_network():
        tr, va, te = provider.embed(train, splits.valid.take(np.arange(20)), splits.test.take(np.arange(30)))
    assert tr.shape[0] == 200 and va.shape[0] == 20 and te.shape[0] == 30
    assert np.isfinite(tr).all() and np.isfinite(te).all() and tr.std() > 0

    assert len(models) == 3 and provider.llm.backbone == "tiny"  # the full model, then one per fold
    rankers = [m.ranker for m in models]
    assert all(r.info["backbone_shared"] for r in rankers)
    assert {r.info["backbone_build"] for r in rankers} == {provider.backbone.name}
    vocab = rankers[0].backbone.tokenizer.get_vocab()
    assert all(r.backbone.tokenizer.get_vocab() == vocab for r in rankers)  # the identical tokenizer
    embeddings = [r.model.lm.get_base_model().get_input_embeddings().weight for r in rankers]
    assert all(torch.equal(e, embeddings[0]) for e in embeddings)  # the same random init (frozen weights)
    # built from the whole train split's prompts; one fold's prompts would have given another tokenizer
    cache = tmp_path / "cache"
    assert shared_backbone(provider.llm, cache, train) == provider.backbone
    builder = PromptBuilder(train.schema, make_summarizer(provider.llm.summarizer, provider.llm.summarize_min_words))
    own = backbone_dir(provider.llm, cache, tokenizer_corpus(train.take(np.arange(100)), builder))
    assert own != provider.backbone

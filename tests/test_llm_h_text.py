"""The ``asllr`` h_text provider: cross-fitting, the leaky variant, wiring, no network."""

import numpy as np
import pytest
from llm_fixtures import make_split

from benchmark.contract import no_network
from feature_store.embeddings import get_provider
from llm_ranker.h_text import AsLLRProvider, crossfit_embed, stratified_folds


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
def test_provider_embeds_train_by_crossfit_and_valid_test_by_the_full_model(crossfit, monkeypatch):
    rec = Recorder()
    provider = get_provider("asllr")({"h_text": {"crossfit": crossfit, "folds": 2}}, seed=0)
    assert isinstance(provider, AsLLRProvider)
    assert ("cross-fitted" in provider.description) == crossfit and ("LEAKY" in provider.description) != crossfit

    class Model:
        def __init__(self, split):
            self.i = rec.fit(split)

        def embed(self, split):
            return rec.embed(self.i, split)
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


def test_provider_end_to_end_on_a_tiny_world(tiny_splits, tmp_path):
    """Real tiny-backbone fold models on a few leads: shapes, finiteness, no network."""
    _, splits = tiny_splits
    config = {"data_dir": str(tmp_path), "h_text": {"folds": 2},
              "llm": {"train_max_leads": 64, "max_length": 256, "threads": 1, "batch_size": 16}}
    provider = get_provider("asllr")(config, seed=0)
    train = splits.train.take(np.arange(200))
    with no_network():
        tr, va, te = provider.embed(train, splits.valid.take(np.arange(20)), splits.test.take(np.arange(30)))
    assert tr.shape[0] == 200 and va.shape[0] == 20 and te.shape[0] == 30
    assert np.isfinite(tr).all() and np.isfinite(te).all() and tr.std() > 0

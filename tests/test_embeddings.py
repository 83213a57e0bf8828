"""h_text: the embedding cache, the train-only reduction and the text encoders (minilm, model2vec, tfidf)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.contract import no_network, tiny_entry
from feature_store import embeddings, text_encoders
from feature_store.embeddings import (EmbeddingProvider, HTextSettings, Model2VecSettings, h_text_arrays, reduce_dim,
                                      register_provider)
from feature_store.errors import ConfigError
from feature_store.spec import load_spec
from feature_store.store import Dataset
from feature_store.text_encoders import (distilled_dir, lead_texts, load_minilm, load_static, mean_of_lines,
                                         split_lines)
from feature_store.typed import parse


@register_provider("_counting")
class Counting(EmbeddingProvider):
    """A cheap stand-in: four numbers per text (length, line breaks, ...); counts its calls."""

    calls = 0

    def embed(self, train, valid, test):
        type(self).calls += 1
        return tuple(np.array([[len(t), t.count("\n"), len(t) % 7, len(t) % 11] for t in lead_texts(s)], dtype=float)
                     for s in (train, valid, test))


@pytest.fixture
def world_copy(tiny_splits, data_dir, tmp_path):
    """A private copy of the session's tiny world, free to be modified."""
    entry = tiny_entry("table2")
    return Path(shutil.copytree(data_dir / f"{entry.world}-{entry.leads}-s{entry.seed}", tmp_path / "world"))


def load(folder):
    ds = Dataset.load(load_spec(folder / "spec.yaml"))
    return ds, ds.splits()


def test_cache_hits_on_second_use_and_misses_after_the_data_changes(world_copy, tmp_path):
    config = {"h_text": {"provider": "_counting", "dim": 2}}
    Counting.calls = 0
    ds, splits = load(world_copy)
    first, info1 = h_text_arrays(ds, splits, config, tmp_path / "cache")
    again, info2 = h_text_arrays(ds, splits, config, tmp_path / "cache")
    assert (info1["h_text_cache_hit"], info2["h_text_cache_hit"], Counting.calls) == (False, True, 1)
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert [len(p) for p in first] == [len(splits.train), len(splits.valid), len(splits.test)]

    part = sorted(world_copy.glob("*.parquet"))[0]
    frame = pd.read_parquet(part)
    frame.loc[0, "transcript"] = "Customer: I changed my mind."
    frame.to_parquet(part)
    # edited by hand, it is no longer what the generator wrote: its fingerprint is then its content
    load_spec(world_copy / "spec.yaml").model_copy(update={"generated_by": None}).save(world_copy / "spec.yaml")
    ds2, splits2 = load(world_copy)
    assert ds2.fingerprint != ds.fingerprint
    _, info3 = h_text_arrays(ds2, splits2, config, tmp_path / "cache")
    assert info3["h_text_cache_hit"] is False and Counting.calls == 2
    _, info4 = h_text_arrays(ds2, splits2, {"h_text": {"provider": "_counting", "dim": 3}}, tmp_path / "cache")
    assert info4["h_text_cache_hit"] is False and Counting.calls == 3  # another dimension is another entry


def test_reduction_is_fit_on_train_only_and_refuses_too_many_dims():
    rng = np.random.default_rng(0)
    train, other = rng.normal(size=(50, 6)), rng.normal(size=(20, 6))
    a = reduce_dim(train, [other], 3, seed=0)
    b = reduce_dim(train, [other * 100], 3, seed=0)
    assert np.array_equal(a[0], b[0]) and a[1].shape == (20, 3) and a[0].dtype == np.float32
    with pytest.raises(ConfigError, match="exceeds"):
        reduce_dim(train, [other], 7, seed=0)


def test_unknown_provider_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown h_text provider 'nope'"):
        embeddings.get_provider("nope")


def test_mean_of_lines_encodes_each_distinct_line_once():
    seen = []

    def encode(lines):
        seen.append(list(lines))
        return np.array([[len(s), 1.0] for s in lines], dtype=np.float32)

    docs = [split_lines("ab\n  \nabcd\n"), [], split_lines("abcd"), split_lines("ab\nab")]
    out = mean_of_lines(docs, encode, dim=2)
    assert seen == [["ab", "abcd"]]  # once, sorted
    np.testing.assert_allclose(out, [[3, 1], [0, 0], [4, 1], [2, 1]])


def test_minilm_loads_offline_and_embeds_consistently():
    with no_network():
        model = load_minilm(max_seq_length=64)
    fact_a = "Customer: Honestly I already paid a deposit for the Tesla last week."
    fact_b = "Customer: I put down a deposit on a BYD already, so probably not."
    chat = "Advisor: The rear seats fold flat, the boot is about six hundred litres."
    docs = [split_lines(t) for t in (fact_a, fact_b, chat, "", f"{chat}\n{fact_a}", "")]
    v = mean_of_lines(docs, lambda lines: model.encode(lines, batch_size=8, show_progress_bar=False), 384)
    assert v.shape == (6, 384) and v.dtype == np.float32
    assert np.array_equal(v[3], v[5]) and not v[3].any()  # every empty text: the same zero vector
    cos = v[:3] @ v[:3].T
    assert cos[0, 1] > cos[0, 2] + 0.1  # two paraphrases of a fact are closer than small talk
    np.testing.assert_allclose(v[4], (v[0] + v[2]) / 2, atol=1e-6)


def test_tfidf_provider_gives_train_fitted_vectors(tiny_splits, tmp_path):
    ds, splits = tiny_splits
    parts, info = h_text_arrays(ds, splits, {"h_text": {"provider": "tfidf", "dim": 16}}, tmp_path)
    assert [p.shape for p in parts] == [(len(s), 16) for s in (splits.train, splits.valid, splits.test)]
    assert "tfidf" in info["h_text_provider"] and np.isfinite(parts[2]).all()


WORDS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "customer", "advisor", ":", "i", "already", "paid", "a",
         "deposit", "for", "the", "tesla", "byd", "seats", "fold", "flat", "boot", "finance", "loan", "income",
         "##s", "##ing"]


@pytest.fixture
def tiny_bert(tmp_path):
    """A random-init 1-layer BERT with a word-piece vocabulary of 26 tokens: a stand-in for MiniLM that
    distils in a second (the packaged MiniLM takes minutes; bench/h_text_providers.py distils that one)."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = tmp_path / "tiny-bert"
    BertTokenizer(vocab={w: i for i, w in enumerate(WORDS)}).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)
    return folder


@pytest.fixture
def counted_distill(monkeypatch):
    """Counts model2vec distillations (the cache's misses)."""
    calls = []
    real = text_encoders._distill

    def counting(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(text_encoders, "_distill", counting)
    return calls


def test_model2vec_distils_once_offline_and_rebuilds_on_a_new_source_or_setting(tiny_bert, counted_distill, tmp_path):
    options = Model2VecSettings(pca_dims=8)
    with no_network():
        first = distilled_dir(tiny_bert, options, tmp_path / "cache")
        again = distilled_dir(tiny_bert, options, tmp_path / "cache")
        assert first == again and len(counted_distill) == 1
        other = distilled_dir(tiny_bert, Model2VecSettings(pca_dims=8, sif_coefficient=1e-2), tmp_path / "cache")
        assert other != first and len(counted_distill) == 2
        (tiny_bert / "config.json").write_text((tiny_bert / "config.json").read_text().replace("0.02", "0.03"))
        assert distilled_dir(tiny_bert, options, tmp_path / "cache") not in (first, other)
    assert len(counted_distill) == 3
    assert not list((tmp_path / "cache" / "static_encoders").glob(".*tmp"))  # no half-built folder left behind


def test_model2vec_vectors_are_token_means_of_a_fixed_table(tiny_bert, tmp_path):
    model = load_static(distilled_dir(tiny_bert, Model2VecSettings(pca_dims=8), tmp_path / "cache"))
    lines = ["customer: i already paid a deposit", "advisor: the seats fold flat", "customer: i already paid a deposit"]
    v = model.encode(lines, use_multiprocessing=False)
    assert v.shape == (3, 8) and model.dim == 8
    np.testing.assert_array_equal(v[0], v[2])  # no context: the same line is the same vector wherever it is
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, rtol=1e-3)  # normalized, like MiniLM's
    assert not np.allclose(v[0], v[1])
    reloaded = load_static(distilled_dir(tiny_bert, Model2VecSettings(pca_dims=8), tmp_path / "cache"))
    np.testing.assert_array_equal(reloaded.encode(lines, use_multiprocessing=False), v)


def test_model2vec_provider_embeds_splits_with_the_distilled_model(tiny_splits, tiny_bert, monkeypatch, tmp_path):
    monkeypatch.setattr(text_encoders, "minilm_dir", lambda: tiny_bert)
    ds, splits = tiny_splits
    config = {"h_text": {"provider": "model2vec", "dim": 4, "model2vec": {"pca_dims": 8}}}
    with no_network():
        parts, info = h_text_arrays(ds, splits, config, tmp_path / "cache", progress=False)
    assert [p.shape for p in parts] == [(len(s), 4) for s in (splits.train, splits.valid, splits.test)]
    assert "model2vec" in info["h_text_provider"] and np.isfinite(parts[2]).all()
    built = [p for p in (tmp_path / "cache" / "static_encoders").glob("tiny-bert-*") if p.is_dir()]
    assert len(built) == 1  # distilled into the run's cache


@pytest.mark.parametrize("bad", [{"pca_dims": 0}, {"pca_dims": 500}, {"sif_coefficient": 1.5}, {"pca": 8}])
def test_model2vec_settings_are_checked(bad):
    with pytest.raises(ConfigError, match="h_text.model2vec"):
        parse(HTextSettings, {"model2vec": bad}, section="h_text")

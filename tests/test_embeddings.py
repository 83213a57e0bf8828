"""h_text: the embedding cache, the train-only reduction and the text encoders (minilm, tfidf)."""

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmark.contract import no_network, tiny_entry
from feature_store import embeddings
from feature_store.embeddings import EmbeddingProvider, h_text_arrays, reduce_dim, register_provider
from feature_store.errors import ConfigError
from feature_store.spec import load_spec
from feature_store.store import Dataset
from feature_store.text_encoders import lead_texts, load_minilm, mean_of_lines, split_lines


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

"""What the heads read (llm.readout_layer, llm.pooling) on a tiny 4-block backbone: the state after
block L through the final norm, the last token or the mean over real tokens, padding-invariant, the
QA path on the last token, the cache serving a truncated backbone, and bad settings refused."""

import numpy as np
import pytest
import torch
from bench_scripts import load_bench
from llm_fixtures import HOT, TRAIN_CFG, backbone_dir, one_thread, tiny_backbone  # noqa: F401 (fixtures)

from feature_store.errors import ConfigError
from llm_ranker.model import LeadRanker
from llm_ranker.prefix_cache import open_cache
from llm_ranker.trainer import pad_batch, predict

BLOCKS = 4


@pytest.fixture
def backbone(backbone_dir):
    """A fresh 4-block backbone per call (LoRA adapts a model in place), every call the same weights."""
    return lambda: tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(8)],
                                 layers=BLOCKS)


def prompts(bb, n=10):
    """Prompts of several lengths, so a batch of them is padded."""
    return bb.tokenizer([HOT.format(w="hot " * (i % 5) + "cold", n=i) for i in range(n)])["input_ids"]


def reference(bb, ids, layer):
    """The plain backbone's states after block ``layer`` through the final norm, and each row's real-token mask."""
    x, mask = pad_batch(ids, bb.pad_id)
    with torch.no_grad():
        states = bb.model(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
    decoder = bb.model.get_decoder()
    # hidden_states[-1] already has the final norm applied; an inner layer's states do not
    return (states[-1] if layer == BLOCKS else decoder.norm(states[layer])), mask


@pytest.mark.parametrize("layer", [2, BLOCKS])
def test_the_heads_read_the_state_after_block_l_at_the_last_token_or_as_the_mean(backbone, layer):
    ids = prompts(backbone())
    states, mask = reference(backbone(), ids, layer)
    last = states[torch.arange(len(ids)), mask.sum(1) - 1]  # right padding: the last real token
    mean = (states * mask.unsqueeze(-1)).sum(1) / mask.sum(1, keepdim=True)
    for pooling, want in (("last", last), ("mean", mean)):
        cfg = TRAIN_CFG.model_copy(update={"readout_layer": layer, "pooling": pooling})
        model = LeadRanker(backbone(), cfg).eval()  # LoRA's B starts at zero: the backbone's own states
        assert len(model.lm.get_base_model().get_decoder().layers) == layer
        with torch.no_grad():
            out = model(*pad_batch(ids, backbone().pad_id))
            lm_logits = model.lm.get_base_model().get_output_embeddings()(last)
        torch.testing.assert_close(out.pooled, want, atol=1e-5, rtol=1e-4)
        # the QA path reads the last token whatever the heads read
        torch.testing.assert_close(out.lm_logits, lm_logits, atol=1e-5, rtol=1e-4)
    assert not torch.allclose(last, mean, atol=1e-3)


def test_mean_pooling_does_not_depend_on_padding(backbone):
    bb = backbone()
    ids = prompts(bb, 12)
    model = LeadRanker(bb, TRAIN_CFG.model_copy(update={"pooling": "mean", "readout_layer": 3})).eval()
    kwargs = dict(pad_id=bb.pad_id, batch_size=12, dtype=torch.float32)
    right, left = predict(model, ids, padding_side="right", **kwargs), predict(model, ids, padding_side="left", **kwargs)
    alone = predict(model, ids, pad_id=bb.pad_id, batch_size=1, dtype=torch.float32)
    for key in ("pointwise", "qa", "pooled"):
        np.testing.assert_allclose(right[key], left[key], atol=1e-5)
        np.testing.assert_allclose(right[key], alone[key], atol=1e-5)


def test_the_prefix_cache_serves_a_truncated_backbone(backbone, tmp_path):
    """LoRA in the top 1 of the 3 blocks kept: 2 frozen blocks, and the split forward equals the whole."""
    bb = backbone()
    ids = prompts(bb)
    cfg = TRAIN_CFG.model_copy(update={"readout_layer": 3, "lora_layers": 1, "pooling": "mean",
                                       "prefix_cache": "fp32"})
    model = LeadRanker(bb, cfg).eval()
    assert model.frozen_blocks == 2
    cache = open_cache(model, cfg, tmp_path, "toy", torch.float32)  # checks the split against the whole
    cached = predict(model, ids, bb.pad_id, 4, torch.float32, prefixes=cache)
    plain = predict(model, ids, bb.pad_id, 4, torch.float32)
    np.testing.assert_allclose(cached["pointwise"], plain["pointwise"], atol=1e-5)
    assert cache.stats.misses == len({tuple(x) for x in ids})


@pytest.mark.parametrize("update, match", [({"readout_layer": BLOCKS + 1}, "readout_layer=5 exceeds"),
                                           ({"readout_layer": 2, "lora_layers": 3}, "lora_layers=3 exceeds")])
def test_a_readout_past_the_blocks_kept_is_refused(backbone, update, match):
    with pytest.raises(ConfigError, match=match):
        LeadRanker(backbone(), TRAIN_CFG.model_copy(update=update))


def test_the_readout_probe_reads_what_the_ranker_would_read(backbone):
    """bench/llm_readout_probe.py chooses llm.readout_layer / llm.pooling from the states of every block:
    each must be the state the ranker's heads read with that readout."""
    from types import SimpleNamespace

    module = load_bench("llm_readout_probe")
    bb = backbone()
    ids = prompts(bb, 7)
    states = module.layer_states(SimpleNamespace(model=LeadRanker(bb, TRAIN_CFG).eval(), backbone=bb), ids, 3)
    assert states["last"].shape == states["mean"].shape == (BLOCKS, len(ids), bb.model.config.hidden_size)
    for layer in (1, 3, BLOCKS):
        for pooling in ("last", "mean"):
            ranker = LeadRanker(backbone(), TRAIN_CFG.model_copy(update={"readout_layer": layer, "pooling": pooling}))
            pooled = predict(ranker.eval(), ids, bb.pad_id, 4, torch.float32)["pooled"]
            np.testing.assert_allclose(states[pooling][layer - 1], pooled, atol=1e-5)

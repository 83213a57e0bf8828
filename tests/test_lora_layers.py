"""``llm.lora_layers``: LoRA, and the backward pass, only in the top k blocks (tiny 4-block backbone)."""

import re

import numpy as np
import pytest
import torch
from llm_fixtures import HOT, TERMS, TRAIN_CFG, backbone_dir, one_thread, tiny_backbone  # noqa: F401 (fixtures)

from feature_store.errors import ConfigError
from feature_store.typed import parse
from llm_ranker.config import LLMParams
from llm_ranker.losses import total_loss
from llm_ranker.model import LeadRanker
from llm_ranker.sampler import BucketedOversampler
from llm_ranker.trainer import Trainer, pad_batch, predict

BLOCKS = 4
CFG = TRAIN_CFG
TOP1 = CFG.model_copy(update={"lora_layers": 1})
LINEAR = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}




@pytest.fixture
def backbone(backbone_dir):
    """A fresh 4-block backbone per ranker (LoRA adapts a model in place), loaded from one build."""
    return lambda: tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(8)],
                                 layers=BLOCKS)


def ranker(backbone, cfg):
    torch.manual_seed(0)
    return LeadRanker(backbone(), cfg)


def toy_batch(bb, n=16):
    labels = np.arange(n) % 2
    texts = [HOT.format(w="hot" if y else "cold", n=i % 5) for i, y in enumerate(labels)]
    return bb.tokenizer(texts)["input_ids"], labels


def lora_blocks(model: LeadRanker) -> dict[int, set[str]]:
    """Block index -> the linear layers that carry LoRA there."""
    out: dict[int, set[str]] = {}
    for name, _ in model.named_parameters():
        hit = re.search(r"layers\.(\d+)\..*\.(\w+)\.lora_A\.", name)
        if hit:
            out.setdefault(int(hit[1]), set()).add(hit[2])
    return out


def lora_size(model: LeadRanker) -> int:
    """Trainable weights outside the heads."""
    heads = {id(p) for p in model.heads.parameters()}
    return sum(p.numel() for p in model.parameters() if p.requires_grad and id(p) not in heads)


def test_only_the_top_k_blocks_get_lora_on_every_linear_layer(backbone):
    every, top = ranker(backbone, CFG), ranker(backbone, TOP1)
    assert lora_blocks(every) == dict.fromkeys(range(BLOCKS), LINEAR)  # null: every block, as before
    assert lora_blocks(top) == {BLOCKS - 1: LINEAR}  # all-linear still applies, in block 3 only
    assert lora_size(top) > 0 and lora_size(top) * BLOCKS == lora_size(every)
    named = ranker(backbone, CFG.model_copy(update={"lora_layers": 2, "lora_targets": ("q_proj", "v_proj")}))
    assert lora_blocks(named) == {2: {"q_proj", "v_proj"}, 3: {"q_proj", "v_proj"}}
    causal_lm = top.lm.get_base_model()  # the LM head is untouched: a plain linear, still tied, frozen
    assert type(causal_lm.lm_head) is torch.nn.Linear and not causal_lm.lm_head.weight.requires_grad
    assert causal_lm.lm_head.weight is causal_lm.get_input_embeddings().weight


def test_the_frozen_blocks_below_build_no_autograd_graph(backbone):
    bb = backbone()
    torch.manual_seed(0)
    model = LeadRanker(bb, TOP1).train()
    outputs = {}
    layers = model.lm.get_base_model().get_decoder().layers
    for i in (BLOCKS - 2, BLOCKS - 1):
        layers[i].register_forward_hook(lambda m, args, out, i=i: outputs.__setitem__(
            i, out[0] if isinstance(out, tuple) else out))
    ids, labels = toy_batch(bb, 8)
    x, mask = pad_batch(ids, bb.pad_id)
    loss, _ = total_loss(TERMS, model(x, mask), {"label": torch.as_tensor(labels)})
    below, top = outputs[BLOCKS - 2], outputs[BLOCKS - 1]
    assert not below.requires_grad and below.grad_fn is None
    assert top.requires_grad and top.grad_fn is not None
    loss.backward()  # the graph starts at block 3 and reaches its LoRA weights
    assert all(p.grad is not None for n, p in model.named_parameters() if "lora_B" in n)


def test_training_changes_only_the_top_lora_weights_and_the_heads_and_merging_still_works(backbone):
    bb = backbone()
    ids, labels = toy_batch(bb)
    torch.manual_seed(0)
    model = LeadRanker(bb, TOP1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    report = Trainer(TOP1, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids, {"label": labels}, bb.pad_id)
    assert report.steps == 2  # lora_A has a zero gradient until lora_B has moved once
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all(n.startswith("heads.") or f"layers.{BLOCKS - 1}." in n and "lora_" in n for n in changed)
    assert {"lora_A", "lora_B"} <= {m for n in changed for m in ("lora_A", "lora_B") if m in n}
    plain = predict(model, ids, bb.pad_id, 8, torch.float32)
    with model.merged():
        merged = predict(model, ids, bb.pad_id, 8, torch.float32)
    for key in ("pointwise", "qa"):
        np.testing.assert_allclose(plain[key], merged[key], atol=1e-4)


def test_k_outside_one_to_the_backbones_blocks_is_refused(backbone):
    with pytest.raises(ConfigError, match=r"llm.lora_layers=5 exceeds the backbone's 4 transformer blocks"):
        ranker(backbone, CFG.model_copy(update={"lora_layers": 5}))
    with pytest.raises(ConfigError, match=r"llm.lora_layers = 0: input should be greater than or equal to 1"):
        parse(LLMParams, {"lora_layers": 0}, section="llm")
    assert parse(LLMParams, {}).lora_layers is None  # the paper's: every block

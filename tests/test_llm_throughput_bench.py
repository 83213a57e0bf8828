"""bench/llm_throughput.py's own counts on a tiny backbone: the FLOPs of the blocks the ranker runs, and
where a training epoch spends its time."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from bench_scripts import load_bench
from llm_fixtures import HOT, TRAIN_CFG, backbone_dir, one_thread, tiny_backbone  # noqa: F401 (fixtures)

from llm_ranker.model import LeadRanker


@pytest.fixture(scope="module")
def bench():
    return load_bench("llm_throughput")


def corpus():
    return [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(12)]


def test_flops_count_the_blocks_that_run_not_the_dropped_ones_nor_lora(bench, backbone_dir):
    """A readout below the top block drops the blocks above it: their weights must not be counted (the
    first standard measurement counted SmolLM2's 30 blocks for a ranker that runs 11, a ratio 2.7x too high)."""
    plain = tiny_backbone(backbone_dir, corpus(), layers=4).model
    block = sum(p.numel() for p in plain.get_decoder().layers[0].parameters())
    whole = sum(p.numel() for n, p in plain.named_parameters() if "embed" not in n and "lm_head" not in n)
    full = LeadRanker(tiny_backbone(backbone_dir, corpus(), layers=4), TRAIN_CFG)
    cut = LeadRanker(tiny_backbone(backbone_dir, corpus(), layers=4), TRAIN_CFG.model_copy(update={"readout_layer": 1}))
    assert bench.running_params(full) == whole  # LoRA's matrices are not the backbone's
    assert bench.running_params(cut) == whole - 3 * block


def test_time_shares_name_where_training_spends_its_time(bench, backbone_dir):
    bb = tiny_backbone(backbone_dir, corpus())
    ids = bb.tokenizer([HOT.format(w="hot" if i % 2 else "cold", n=i) for i in range(16)])["input_ids"]
    labels = np.arange(16) % 2
    for dropout in (0.1, 0.0):
        cfg = TRAIN_CFG.model_copy(update={"lora_rank": 3, "lora_dropout": dropout, "head_dropout": dropout})
        torch.manual_seed(0)
        shares = bench.time_shares(LeadRanker(tiny_backbone(backbone_dir, corpus()), cfg), ids, labels,
                                   bb.pad_id, cfg, torch.float32)
        assert set(shares) == {"matmul", "lora_matmul", "dropout_rng", "attention", "other"}
        assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
        assert shares["matmul"] > 0 and shares["lora_matmul"] > 0 and shares["attention"] > 0
        assert (shares["dropout_rng"] > 0) == (dropout > 0)

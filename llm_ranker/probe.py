"""Before the fine-tune: the heads' input standardized, and the heads trained alone on frozen states.

A short LoRA fine-tune starts its heads from random weights on a pretrained LM's pooled states, which
hold a few dimensions of large, nearly constant value beside many small ones. Measured on the standard
Table 1 world (SmolLM2, mean over tokens after block 11, 1,000 training leads, the class-balanced
validation sample; an MLP head trained alone on frozen states, two seeds): raw states rank the
validation leads at 0.68 after 125 steps (the fine-tune's own count), standardized ones at 0.74, and at
0.79 after 500 steps; the fine-tuned row with raw states reached 0.69. Both fixes read one frozen
scoring pass over the training prompts (``llm.head_input``, ``llm.probe_steps``): linear probe, then
fine-tune, with the probe's statistics kept in the model (its checkpoints included).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np
import torch

from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm
from llm_ranker.model import LeadRanker, RankerOutput
from llm_ranker.sampler import BatchSampler

if TYPE_CHECKING:
    from llm_ranker.prefix_cache import PrefixCache


def needs_frozen_pass(cfg: LLMParams) -> bool:
    return cfg.head_input == "standardized" or cfg.probe_steps > 0


def probe_heads(model: LeadRanker, ids: list[list[int]], targets: dict[str, np.ndarray], pad_id: int,
                cfg: LLMParams, terms: list[LossTerm], sampler: BatchSampler, seed: int, dtype: torch.dtype,
                prefixes: PrefixCache | None = None, progress: bool = False) -> dict:
    """Score the training prompts with the model as built (LoRA is the identity before training), set the
    heads' input standardization from their pooled states, then train the heads alone for
    ``cfg.probe_steps`` steps. Returns what the probe did, for the run's report.

    Only the loss terms that read a head train here: the LM head's logits are a zero placeholder, so a
    term on them (L_CE) is constant, carries no gradient, and is left out of the probe's loss."""
    from llm_ranker.trainer import predict

    def frozen_pass() -> np.ndarray:
        return predict(model, ids, pad_id, cfg.score_batch_size, dtype, progress, prefixes=prefixes)["pooled"]

    t0 = time.perf_counter()  # every row of a table reads the same frozen pass: with a cache, computed once
    pooled = torch.as_tensor(frozen_pass() if prefixes is None else
                             prefixes.frozen_readout(ids, cfg.score_batch_size, frozen_pass))
    standardize(model, pooled if cfg.head_input == "standardized" else None)
    losses = train_heads(model, pooled, targets, cfg, terms, sampler, seed) if cfg.probe_steps else []
    tenth = max(1, len(losses) // 10)
    return {"head_input": cfg.head_input, "steps": len(losses), "seconds": round(time.perf_counter() - t0, 2),
            "loss_first_tenth": round(float(np.mean(losses[:tenth])), 5) if losses else None,
            "loss_last_tenth": round(float(np.mean(losses[-tenth:])), 5) if losses else None}


def standardize(model: LeadRanker, pooled: torch.Tensor | None) -> None:
    """Set the heads' input standardization from ``pooled`` states (mean, std; a constant dimension keeps
    scale 1), or back to the identity with None."""
    if pooled is None:
        model.head_center.zero_()
        model.head_scale.fill_(1.0)
        return
    std = pooled.std(0)
    model.head_center.copy_(pooled.mean(0))
    model.head_scale.copy_(torch.where(std > 1e-6, std, torch.ones_like(std)))


def train_heads(model: LeadRanker, pooled: torch.Tensor, targets: dict[str, np.ndarray], cfg: LLMParams,
                 terms: list[LossTerm], sampler: BatchSampler, seed: int) -> list[float]:
    """``cfg.probe_steps`` AdamW steps on the heads, batches from the row's sampler (its own generator, so
    every row of a seed draws the same probe batches and the fine-tune's batches stay as they were)."""
    rng = np.random.default_rng([seed, 3])
    lengths = np.ones(len(pooled), dtype=np.int64)  # the states have no length: no bucketing by it
    batches: list[np.ndarray] = []
    while len(batches) < cfg.probe_steps:
        batches += sampler.batches(lengths, targets, rng)
    device = model.head_center.device
    vocab = model.lm.get_base_model().get_output_embeddings().out_features
    tensors = {k: torch.as_tensor(np.asarray(v)).to(device) for k, v in targets.items()}
    optimizer = torch.optim.AdamW(model.heads.parameters(), lr=cfg.lr_heads, weight_decay=0.0)
    model.heads.train()
    losses = []
    for b in batches[:cfg.probe_steps]:
        x = pooled[b].to(device)
        out = RankerOutput(pooled=x, heads=model.read(x), lm_logits=torch.zeros(len(b), vocab, device=device),
                           answer_ids=model.answer_ids)
        batch_targets = {k: v[b] for k, v in tensors.items()}
        values = [(t.weight, t.fn(out, batch_targets)) for t in terms]
        loss = sum(w * v for w, v in values if v.requires_grad)
        if not torch.is_tensor(loss):
            raise ValueError("llm.probe_steps: no loss term of this method reads a head; set it to 0")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses

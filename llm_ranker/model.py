"""The ranker network: a LoRA-adapted causal LM with a dict of scalar heads.

Every head reads the same vector, the backbone's final hidden state at the
*last non-padding token of the prompt* (the ":" of "Answer:"). A decoder-only
model has read the whole lead at that position, and it is exactly where the LM
head predicts the answer token, so the heads and the QA loss share one
representation and one forward pass. The position is found from the attention
mask and position ids are rebuilt from it, so left and right padding give the
same scores (tested).

Heads live in ``LeadRanker.heads`` (an ``nn.ModuleDict``): asLLR has
``pointwise``; HPRO adds ``pairwise`` by passing ``head_names``. The LM head is
the backbone's own (tied to the input embeddings and frozen); it is applied to
the pooled vectors only, never to every position.

Dropout 0.5 (the paper's value) is applied to the pooled vector as it enters
each scalar head and between the head's two layers; LoRA has its own, smaller
dropout (``llm.lora_dropout``). The QA path (pooled -> LM head) has none, so
its probabilities are the language model's.

LoRA sits in every transformer block (the paper's) or, with ``llm.lora_layers
= k``, in the top k only (:func:`lora_config`): a cheaper fine-tune, since the
blocks below then run forward only.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

from feature_store.errors import ConfigError
from llm_ranker.backbones import Backbone
from llm_ranker.config import LLMParams


@dataclass
class RankerOutput:
    pooled: torch.Tensor  # (B, H) final hidden state at the last prompt token
    heads: dict[str, torch.Tensor]  # head name -> (B,) logits
    lm_logits: torch.Tensor  # (B, V) next-token logits at the last prompt token
    answer_ids: tuple[int, int]  # vocabulary ids of " Yes" and " No"

    @property
    def qa_logit(self) -> torch.Tensor:
        """log P(" Yes") - log P(" No"): the logit of P(Yes) / (P(Yes) + P(No))."""
        yes, no = self.answer_ids
        return self.lm_logits[:, yes] - self.lm_logits[:, no]


class ScalarHead(nn.Module):
    """A small MLP from the pooled state to one logit."""

    def __init__(self, hidden: int, inner: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Dropout(dropout), nn.Linear(hidden, inner), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(inner, 1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.net(pooled).squeeze(-1)


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding token of each row, for left or right padding."""
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.flip(-1).argmax(-1)


def lora_config(model: nn.Module, cfg: LLMParams):
    """peft's LoraConfig for ``cfg``: LoRA in every block, or with ``llm.lora_layers = k`` in the top k.

    With the top k only, the blocks below hold no trainable weight and their input (the frozen
    embeddings) needs no gradient, so autograd records nothing there: they cost a forward pass and
    no backward (tested). peft refuses ``layers_to_transform`` with the string 'all-linear', so that
    shorthand is spelled out as the names of the blocks' linear layers (the LM head is not in a block)."""
    from peft import LoraConfig

    targets = cfg.lora_targets if isinstance(cfg.lora_targets, str) else list(cfg.lora_targets)
    layers = None
    if cfg.lora_layers is not None:
        blocks = model.config.num_hidden_layers
        if cfg.lora_layers > blocks:
            raise ConfigError(f"llm.lora_layers={cfg.lora_layers} exceeds the backbone's {blocks} transformer blocks",
                              hint=f"use 1..{blocks}, or null for every block")
        layers = list(range(blocks - cfg.lora_layers, blocks))
        if targets == "all-linear":
            targets = sorted({name.rsplit(".", 1)[-1] for name, m in model.get_decoder().layers.named_modules()
                              if isinstance(m, nn.Linear)})
    return LoraConfig(r=cfg.lora_rank, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, layers_to_transform=layers, bias="none")


class LeadRanker(nn.Module):
    """LoRA backbone + named scalar heads + the tied LM head for the answer token."""

    def __init__(self, backbone: Backbone, cfg: LLMParams, head_names: tuple[str, ...] = ("pointwise",)):
        super().__init__()
        from peft import get_peft_model

        if hasattr(backbone.model, "peft_config"):  # get_peft_model adapts the model in place
            raise ValueError("this backbone already carries LoRA adapters; load a fresh one per ranker")
        lora = lora_config(backbone.model, cfg)
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.lm = get_peft_model(backbone.model, lora)  # freezes every backbone weight
        hidden = self.lm.get_base_model().config.hidden_size
        self.heads = nn.ModuleDict({n: ScalarHead(hidden, cfg.head_hidden, cfg.head_dropout) for n in head_names})
        self.answer_ids = backbone.answer_ids

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> RankerOutput:
        causal_lm = self.lm.get_base_model()
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
        hidden = causal_lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask,
                                         position_ids=position_ids, use_cache=False).last_hidden_state
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        pooled = hidden[rows, last_token_index(attention_mask)]
        return RankerOutput(pooled=pooled, heads={n: h(pooled) for n, h in self.heads.items()},
                            lm_logits=causal_lm.get_output_embeddings()(pooled), answer_ids=self.answer_ids)

    def param_groups(self, cfg: LLMParams) -> list[dict]:
        """Differential learning rates: heads at ``lr_heads``, LoRA at ``lr_lora``."""
        lora = [p for p in self.lm.parameters() if p.requires_grad]
        return [{"params": list(self.heads.parameters()), "lr": cfg.lr_heads, "name": "heads"},
                {"params": lora, "lr": cfg.lr_lora, "name": "lora"}]

    @contextmanager
    def merged(self) -> Iterator["LeadRanker"]:
        """LoRA folded into the base weights while inside: inference without the adapters' skinny
        matmuls (~15 % faster on CPU); unmerged on exit so training can go on."""
        self.lm.merge_adapter()
        try:
            yield self
        finally:
            self.lm.unmerge_adapter()

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """LoRA and head weights only (what a checkpoint needs; the backbone is frozen)."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

"""The ranker network: a LoRA-adapted causal LM with a dict of scalar heads.

Every head reads the same vector, by default (the paper's) the backbone's final
hidden state at the *last non-padding token of the prompt* (the ":" of
"Answer:"). A decoder-only model has read the whole lead at that position, and
it is exactly where the LM head predicts the answer token, so the heads and the
QA loss share one representation and one forward pass. ``llm.pooling = mean``
feeds the heads the mean over the prompt's tokens instead, and
``llm.readout_layer = L`` reads the state after block L (the blocks above are
dropped); the QA loss still reads the last token. The position is found from the attention
mask and position ids are rebuilt from it, so left and right padding give the
same scores (tested).

Heads live in ``LeadRanker.heads`` (an ``nn.ModuleDict``): asLLR has
``pointwise``; HPRO adds ``pairwise`` by passing ``head_names``. The LM head is
the backbone's own (tied to the input embeddings; frozen unless ``llm.train_backbone``); it is applied to
the pooled vectors only, never to every position.

Dropout 0.5 (the paper's value) is applied to the pooled vector as it enters
each scalar head and between the head's two layers; LoRA has its own, smaller
dropout (``llm.lora_dropout``). The QA path (pooled -> LM head) has none, so
its probabilities are the language model's.

LoRA sits in every transformer block (the paper's) or, with ``llm.lora_layers
= k``, in the top k only (:func:`lora_config`): a cheaper fine-tune, since the
blocks below then run forward only. Their output for a prompt then never
changes, so the forward can start from it (``prefix``: the hidden states
entering the first trainable block, :meth:`LeadRanker.frozen_prefix`), which
the frozen-prefix cache (:mod:`llm_ranker.prefix_cache`) computes once per
prompt.
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
    pooled: torch.Tensor  # (B, H) the heads' input: the state at the last prompt token, or the mean over tokens
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


def mean_over_tokens(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each row's states over its real tokens (padding left out, wherever it sits)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)


def truncate(model: nn.Module, blocks: int) -> None:
    """Keep the first ``blocks`` transformer blocks of a causal LM (in place); its forward then applies
    the final norm to their output. Refuses more blocks than the model has."""
    config = model.config
    if blocks > config.num_hidden_layers:
        raise ConfigError(f"llm.readout_layer={blocks} exceeds the backbone's {config.num_hidden_layers} "
                          "transformer blocks", hint=f"use 1..{config.num_hidden_layers}, or null for every block")
    decoder = model.get_decoder()
    decoder.layers = decoder.layers[:blocks]
    config.num_hidden_layers = blocks
    if getattr(config, "layer_types", None):
        config.layer_types = config.layer_types[:blocks]


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last non-padding token of each row, for left or right padding."""
    width = attention_mask.shape[1]
    return width - 1 - attention_mask.flip(-1).argmax(-1)


def run_blocks(decoder: nn.Module, hidden: torch.Tensor, attention_mask: torch.Tensor, position_ids: torch.Tensor,
               blocks: range) -> torch.Tensor:
    """The decoder's blocks ``blocks`` applied to ``hidden`` with the masks, rotary embeddings and
    per-block attention types its own forward builds (Llama-style decoders such as Llama and Qwen2).

    The decoder's forward runs every block; the frozen-prefix split needs the bottom and the top
    apart. :func:`llm_ranker.prefix_cache.check_split` compares the two halves with the whole on a
    backbone before it is used."""
    from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

    config = decoder.config
    types = getattr(config, "layer_types", None) or ["full_attention"] * config.num_hidden_layers
    mask_args = dict(config=config, inputs_embeds=hidden, attention_mask=attention_mask, cache=None,
                     position_ids=position_ids)
    masks = {"full_attention": create_causal_mask(**mask_args)}
    if "sliding_attention" in types:
        masks["sliding_attention"] = create_sliding_window_causal_mask(**mask_args)
    rotary = decoder.rotary_emb(hidden, position_ids)
    for i in blocks:
        hidden = decoder.layers[i](hidden, attention_mask=masks[types[i]], position_embeddings=rotary,
                                   position_ids=position_ids, use_cache=False)
    return hidden


def position_ids_of(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left and right padding give the same numbers."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


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
        if cfg.train_backbone and cfg.lora_layers is not None:
            raise ConfigError("llm.train_backbone trains every block, so llm.lora_layers (LoRA in the top k only, "
                              "the blocks below frozen) cannot apply", hint="set llm.lora_layers=null")
        if cfg.readout_layer is not None:
            truncate(backbone.model, cfg.readout_layer)
        lora = lora_config(backbone.model, cfg)
        with warnings.catch_warnings():  # peft calls a transformers API deprecated in v5; not ours to fix
            warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
            self.lm = get_peft_model(backbone.model, lora)  # freezes every backbone weight
        if cfg.train_backbone:
            self.lm.get_base_model().requires_grad_(True)
        hidden = self.lm.get_base_model().config.hidden_size
        self.heads = nn.ModuleDict({n: ScalarHead(hidden, cfg.head_hidden, cfg.head_dropout) for n in head_names})
        # the heads read (pooled - center) / scale: the identity unless llm.head_input = standardized sets them
        # (llm_ranker.probe); buffers, not weights, kept in checkpoints with the trainable state
        self.register_buffer("head_center", torch.zeros(hidden))
        self.register_buffer("head_scale", torch.ones(hidden))
        self.answer_ids = backbone.answer_ids
        self.pooling = cfg.pooling
        blocks = self.lm.get_base_model().config.num_hidden_layers
        # blocks below the first that carries LoRA: frozen, their output a function of the prompt alone
        self.frozen_blocks = blocks - cfg.lora_layers if cfg.lora_layers is not None else 0

    def forward(self, input_ids: torch.Tensor | None, attention_mask: torch.Tensor,
                prefix: torch.Tensor | None = None) -> RankerOutput:
        """Heads and answer logits of a batch, from its token ids or from its ``prefix``
        (:meth:`frozen_prefix` of those ids: then only the blocks above it run)."""
        causal_lm = self.lm.get_base_model()
        decoder = causal_lm.get_decoder()
        position_ids = position_ids_of(attention_mask)
        if prefix is None:
            hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids,
                             use_cache=False).last_hidden_state
        else:
            top = range(self.frozen_blocks, len(decoder.layers))
            hidden = decoder.norm(run_blocks(decoder, prefix, attention_mask, position_ids, top))
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        last = hidden[rows, last_token_index(attention_mask)]
        pooled = mean_over_tokens(hidden, attention_mask) if self.pooling == "mean" else last
        return RankerOutput(pooled=pooled, heads=self.read(pooled),
                            lm_logits=causal_lm.get_output_embeddings()(last), answer_ids=self.answer_ids)

    def read(self, pooled: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every head's logit from pooled states (what :meth:`forward` does after the backbone)."""
        x = (pooled - self.head_center.to(pooled.dtype)) / self.head_scale.to(pooled.dtype)
        return {n: h(x) for n, h in self.heads.items()}

    def frozen_prefix(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The hidden states entering the first block with LoRA (the embeddings when every block has it)."""
        decoder = self.lm.get_base_model().get_decoder()
        return run_blocks(decoder, decoder.get_input_embeddings()(input_ids), attention_mask,
                          position_ids_of(attention_mask), range(self.frozen_blocks))

    def param_groups(self, cfg: LLMParams) -> list[dict]:
        """Differential learning rates: heads at ``lr_heads``, LoRA at ``lr_lora`` (and the backbone's own
        weights with it under ``llm.train_backbone``, a group then named "backbone")."""
        lm = [p for p in self.lm.parameters() if p.requires_grad]
        return [{"params": list(self.heads.parameters()), "lr": cfg.lr_heads, "name": "heads"},
                {"params": lm, "lr": cfg.lr_lora, "name": "backbone" if cfg.train_backbone else "lora"}]

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
        """What a checkpoint needs: the trainable weights (LoRA and heads; every weight under
        ``llm.train_backbone``) and the heads' input standardization."""
        return ({n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}
                | {n: getattr(self, n).detach().clone() for n in ("head_center", "head_scale")})

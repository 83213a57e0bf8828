"""Typed configuration of the LLM rankers, read from the profile's ``llm:`` section.

Defaults are the paper's values (``../shared/DESIGN.md``): LoRA rank 16,
dropout 0.5, one epoch, ``L = α·L_BCE + λ2·L_CE`` with α = 2.0 and λ2 = 0.5,
heads at 5e-5 and LoRA 20× lower, a 2,000-token dialogue budget. The CPU
profiles override what a small backbone and a small budget need; every value
that changes a model is recorded in the result JSON.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from feature_store.errors import ConfigError


@dataclass(frozen=True)
class TinyBackbone:
    """Shape of the random-init Qwen2 ``tiny`` backbone (tests and the quick profile)."""

    hidden: int = 64
    layers: int = 2
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 128
    vocab: int = 4096  # byte-level BPE trained on the training prompts


@dataclass(frozen=True)
class LLMConfig:
    backbone: str = "tiny"  # tiny | smollm2-135m | /path/to/a/local/causal-lm
    max_length: int = 2048  # prompt tokens; the dialogue is trimmed to fit, the table part never
    dialogue_tokens: int = 2000  # the paper's dialogue budget
    summarizer: str = "extractive"  # extractive | none | /path/to/a/local/causal-lm (abstractive)
    summarize_min_words: int = 150  # only transcripts longer than this are summarized
    train_max_leads: int | None = None  # subsample of train (all positives kept); None = all
    valid_max_leads: int = 0  # valid leads scored after training for a sanity AUC; 0 = skip
    batch_size: int = 8
    grad_accum: int = 1
    score_batch_size: int = 16
    epochs: int = 1
    lr_heads: float = 5e-5
    lr_lora: float = 2.5e-6  # the paper: 20x lower than the heads
    warmup_ratio: float = 0.05
    pos_rate: float = 0.1  # positives are oversampled to this share of training draws
    bucket_batches: int = 50  # length bucketing: sort within windows of this many batches
    lora_rank: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.05
    lora_targets: str | tuple[str, ...] = "all-linear"
    head_hidden: int = 256
    head_dropout: float = 0.5  # the paper's dropout: on the pooled state feeding the heads
    alpha: float = 2.0  # weight of L_BCE
    lambda_ce: float = 0.5  # weight of L_CE (QA loss through the LM head)
    score: str = "pointwise"  # the scoring rule: pointwise | qa (| pairwise, blend with HPRO)
    dtype: str = "auto"  # auto (bf16 where the hardware has fast bf16) | bf16 | fp32
    threads: int | None = None  # CPU threads for torch while the ranker runs; None = torch's default
    checkpoint_every: int = 0  # optimizer steps between resumable checkpoints; 0 = none
    tiny: TinyBackbone = field(default_factory=TinyBackbone)

    @classmethod
    def from_mapping(cls, llm: Mapping[str, Any] | None) -> "LLMConfig":
        """Build from a profile's ``llm:`` mapping; unknown keys are an error (typos must not pass silently)."""
        llm = dict(llm or {})
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(llm) - known)
        if unknown:
            raise ConfigError(f"unknown llm.* key(s) {unknown}", hint=f"known: {sorted(known)}")
        if "backbone" in llm and not llm["backbone"]:
            raise ConfigError("llm.backbone is not set (the paper profile names no model: weights are never "
                              "downloaded)", hint="pass a local causal LM directory, e.g. "
                                                  "--set llm.backbone=/models/Qwen2.5-1.5B")
        if "tiny" in llm:
            llm["tiny"] = TinyBackbone(**llm["tiny"])
        if isinstance(llm.get("lora_targets"), list):
            llm["lora_targets"] = tuple(llm["lora_targets"])
        hints = typing.get_type_hints(cls)
        for key, value in llm.items():
            if hints[key] is float and isinstance(value, (str, int)):
                llm[key] = float(value)  # YAML reads 1e-3 (no dot) as a string
        cfg = cls(**llm)
        if cfg.dtype not in ("auto", "bf16", "fp32"):
            raise ConfigError(f"llm.dtype must be auto, bf16 or fp32, not '{cfg.dtype}'")
        return cfg

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "LLMConfig":
        return cls.from_mapping(config.get("llm"))

    def replace(self, **changes: Any) -> "LLMConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

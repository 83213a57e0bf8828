"""Typed settings of the LLM rankers: the profile's ``llm:`` section.

Defaults are the papers' values (docs/llm-rankers.md): LoRA rank 16, the
heads' dropout 0.5, one epoch, ``L = α·L_BCE + λ2·L_CE`` with α = 2.0 and
λ2 = 0.5, heads at 5e-5 and LoRA 20× lower, a 2,000-token dialogue budget.
The CPU profiles override what a small backbone and a small budget need;
every value that changes a model is recorded in the result JSON.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from leadrank_api import Params


class TinyBackbone(Params):
    """Shape of the random-init Qwen2 ``tiny`` backbone (tests and the quick profile)."""

    hidden: int = 64
    """Hidden size."""
    layers: int = 2
    """Transformer blocks."""
    heads: int = 4
    """Attention heads."""
    kv_heads: int = 2
    """Key/value heads (grouped-query attention)."""
    intermediate: int = 128
    """MLP width."""
    vocab: int = 4096
    """Byte-level BPE vocabulary, trained on the training prompts."""


class LLMParams(Params):
    """The ``llm:`` section: backbone, prompt, fine-tune and scoring of asLLR and HPRO."""

    backbone: str | None = "tiny"
    """tiny | smollm2-135m | /path/to/a/local/causal-lm (weights are never downloaded)."""
    max_length: int = 2048
    """Prompt tokens; the dialogue is trimmed to fit, the table part never."""
    dialogue_tokens: int = 2000
    """The paper's dialogue budget."""
    summarizer: str = "extractive"
    """extractive | none | /path/to/a/local/causal-lm (abstractive)."""
    summarize_min_words: int = 150
    """Only transcripts longer than this are summarized."""
    train_max_leads: int | None = None
    """Train on a subsample of this many leads (all positives kept up to half); null = every train lead."""
    valid_max_leads: int = Field(default=0, ge=0)
    """Valid leads scored after training for info.diagnostics.valid_auc, class-balanced (as many positives as
    negatives, up to half each; nothing is tuned on it); 0 = skip (the CPU profiles set one)."""
    batch_size: int = 8
    """Leads per micro-batch."""
    grad_accum: int = 1
    """Micro-batches per optimizer step."""
    score_batch_size: int = 16
    """Leads per forward pass when scoring."""
    epochs: int = 1
    """Passes over the training draws."""
    lr_heads: float = 5e-5
    """Learning rate of the heads (the paper: 5e-5)."""
    lr_lora: float = 2.5e-6
    """Learning rate of the LoRA weights (the paper: 20x lower than the heads)."""
    warmup_ratio: float = 0.05
    """Share of steps with a linear warm-up."""
    pos_rate: float = 0.1
    """Positives are oversampled to this share of training draws."""
    bucket_batches: int = 50
    """Length bucketing: prompts are sorted by length within windows of this many batches."""
    lora_rank: int = 16
    """LoRA rank (the paper: 16)."""
    lora_alpha: int = 32
    """LoRA scaling numerator."""
    lora_dropout: float = 0.05
    """Dropout on the LoRA path (the heads' dropout is head_dropout)."""
    lora_targets: str | tuple[str, ...] = "all-linear"
    """Modules that get LoRA: 'all-linear' or a list of module names."""
    lora_layers: int | None = Field(default=None, ge=1)
    """LoRA only in the top k transformer blocks (null = every block, the paper's)."""
    readout_layer: int | None = Field(default=None, ge=1)
    """Read the lead after the first L transformer blocks (then the final norm) and drop the blocks above
    (null = every block, the paper's). A middle layer of a pretrained LM carries more of what a prompt
    states than its last layer, which is shaped to predict the next token; it also halves the compute.
    ``lora_layers`` then counts from block L down. The QA path reads the same state through the LM head."""
    pooling: Literal["last", "mean"] = "last"
    """The heads' input: the state at the last prompt token (the paper's) or the mean over the prompt's
    tokens (every fact line contributes its own states, not only what the last token attended to).
    The QA loss always reads the last token, where the answer is predicted."""
    head_input: Literal["raw", "standardized"] = "raw"
    """The heads' input: the pooled state as it is (the paper's), or centred and scaled per dimension by its
    mean and standard deviation over the training prompts, taken in one frozen pass before training. A
    pretrained LM's states hold a few dimensions of large, nearly constant value (SmolLM2's block 11: one
    mean near 26 beside spreads of 0.02-0.5); a head behind dropout learns around them slowly."""
    probe_steps: int = Field(default=0, ge=0)
    """Linear probe, then fine-tune: optimizer steps that train the heads alone on the frozen pass's pooled
    states (batches drawn by the row's own sampler, at ``lr_heads``) before LoRA and the heads train
    together; 0 = none (the paper's). The frozen pass is one scoring pass over the training prompts."""
    train_backbone: bool = False
    """Train every backbone weight too (embeddings and the tied LM head included), beside LoRA and the heads.
    For a random-init backbone (``tiny``), which holds no pretrained knowledge for LoRA to keep: there a
    frozen random network is the model's whole representation. The paper trains LoRA only."""
    prefix_cache: Literal["off", "fp16", "fp32"] = "off"
    """With lora_layers = k: the hidden states entering block n-k, computed once per prompt and kept on disk
    (llm_ranker.prefix_cache), in fp16 or fp32; off = the frozen blocks run in every epoch, row and pass.
    Measured on SmolLM2 (bench/README.md, row 8): 1.50x on the standard profile's five LLM rows, 1.32x on
    one row over 2 epochs (fp16), scores within 6e-4 (fp16) or identical (fp32). Off by default, on (fp16)
    in the standard profile: a profile that turns it on changes its LLM rows' settings, so they rerun."""
    prefix_cache_gb: float = Field(default=4.0, gt=0)
    """Disk bound of the prefix cache (<data_dir>/cache/prefix, every build); least recently used go first."""
    head_hidden: int = 256
    """Hidden width of each scalar head."""
    head_dropout: float = 0.5
    """The paper's dropout 0.5: on the pooled state feeding the heads."""
    alpha: float = 2.0
    """Weight of L_BCE."""
    lambda_ce: float = 0.5
    """Weight of L_CE (the QA loss through the LM head) where a method uses it."""
    score: str = "pointwise"
    """Scoring rule (llm_ranker.scoring): pointwise (the paper's) | qa | pairwise, blend (HPRO's heads)."""
    dtype: Literal["auto", "bf16", "fp32"] = "auto"
    """auto = bf16 where the hardware has fast bf16, else fp32."""
    threads: int | None = None
    """CPU threads for torch while the ranker runs; null = torch's default."""
    checkpoint_every: int = 0
    """Optimizer steps between resumable checkpoints; 0 = none."""
    tiny: TinyBackbone = TinyBackbone()
    """Shape of the tiny backbone."""

    @field_validator("prefix_cache", mode="before")
    @classmethod
    def _bare_off(cls, value):
        """YAML reads a bare ``off`` as false, so ``--set llm.prefix_cache=off`` arrives as False."""
        return "off" if value is False else value

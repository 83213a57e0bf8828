"""The pipeline both the methods and the ``asllr`` h_text provider use:
split -> prompts -> backbone -> LoRA ranker -> trained model -> per-lead outputs."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feature_store.sampling import class_sample
from feature_store.schema import Schema
from feature_store.split import Split
from leadrank_api import torch_threads
from llm_ranker.backbones import backbone_dir, compute_dtype, load_backbone
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm
from llm_ranker.model import LeadRanker
from llm_ranker.prefix_cache import open_cache
from llm_ranker.prompt import PromptBuilder, PromptParts, TokenBudget, hf_token_spans
from llm_ranker.sampler import BatchSampler
from llm_ranker.summarizer import make_summarizer, n_words
from llm_ranker.trainer import Trainer, TrainReport, exposure, predict

TOKENIZER_CORPUS_LEADS = 2000  # prompts the tiny backbone's BPE is trained on


def tokenizer_corpus(split: Split, builder: PromptBuilder) -> list[str]:
    """The rendered prompts of up to about ``TOKENIZER_CORPUS_LEADS`` evenly spaced leads of ``split``
    (what a tiny backbone's BPE is trained on; prompts are per lead, so only these are built)."""
    step = max(1, len(split) // TOKENIZER_CORPUS_LEADS)
    return [p.render() for p in builder.parts(split.take(np.arange(0, len(split), step)))]


def shared_backbone(cfg: LLMParams, cache_dir: str | Path, split: Split) -> Path:
    """One backbone build for several models trained on parts of ``split`` (e.g. cross-fit folds):
    a tiny backbone's tokenizer and random init then come from the whole split, so every model
    embeds into the same token space from the same start."""
    if cfg.backbone != "tiny":  # a pretrained backbone is one build already; no prompts needed
        return backbone_dir(cfg, cache_dir)
    builder = PromptBuilder(split.schema, make_summarizer(cfg.summarizer, cfg.summarize_min_words))
    return backbone_dir(cfg, cache_dir, tokenizer_corpus(split, builder))


def subsample(split: Split, max_leads: int | None, seed: int) -> Split:
    """At most ``max_leads`` leads (fixed seed): every positive, then random negatives.

    Positives are rare (about 1.4 %), so keeping all of them costs little and keeps
    most of the signal. Where they would fill more than half of the budget, half
    of it is given to a random sample of them, so both classes stay represented."""
    if not max_leads or len(split) <= max_leads:
        return split
    y = split.y
    n_pos, n_neg = int((y == 1).sum()), int((y != 1).sum())
    take_pos = min(n_pos, max(max_leads // 2, max_leads - n_neg))
    return split.take(class_sample(y, take_pos, max_leads - take_pos, np.random.default_rng([seed, 2718])))


class LLMRanker:
    """Fits a :class:`LeadRanker` on a split and predicts any split with the same prompts."""

    def __init__(self, cfg: LLMParams, cache_dir: str | Path, seed: int, terms: list[LossTerm],
                 sampler: BatchSampler | None, head_names: tuple[str, ...] = ("pointwise",), progress: bool = False,
                 backbone_dir: Path | None = None):
        """``backbone_dir``: a backbone build to load (:func:`shared_backbone`); None = the configured
        backbone, a tiny one built from the training prompts of :meth:`fit`."""
        self.cfg, self.cache_dir, self.seed, self.terms = cfg, Path(cache_dir), seed, terms
        self.sampler, self.head_names, self.progress = sampler, head_names, progress
        self.backbone_dir = backbone_dir
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = compute_dtype(cfg, self.device)
        self.info: dict[str, Any] = {}

    def fit(self, train: Split, targets: dict[str, np.ndarray]) -> "LLMRanker":
        cfg = self.cfg
        self._start(train.schema)
        parts = self.builder.parts(train)
        path = self.backbone_dir
        if path is None:
            step = max(1, len(parts) // TOKENIZER_CORPUS_LEADS)
            path = backbone_dir(cfg, self.cache_dir, [p.render() for p in parts[::step]])
        self._load(path)
        ids, prompt_info = self._encode(parts)
        with torch.random.fork_rng(), torch_threads(cfg.threads):
            torch.manual_seed(self.seed)
            self._build()
            self.trainer = Trainer(cfg, self.terms, self.sampler, self.seed, self.dtype,
                                   self._checkpoint_dir(train, targets, path), self.progress)
            report = self.trainer.fit(self.model, ids, targets, self.backbone.pad_id, self.prefixes)
        self._describe(len(train), int(targets["label"].sum()), report,
                       prompt_info | self.summary_info(train, parts))
        return self

    def zero_shot(self, schema: Schema) -> "LLMRanker":
        """The backbone as it ships, nothing trained (a learning curve's n = 0 point): LoRA starts as the
        identity, so :meth:`predict`'s ``qa`` output is the backbone's own log P(" Yes") − log P(" No") after
        the prompt. A tiny backbone is built from prompts and there are no training prompts: it is built
        from the first split scored (its prompts, no label). ``llm.readout_layer`` does not apply: the QA rule
        is the whole language model's answer, not an inner block's state read through its LM head."""
        self.cfg = self.cfg.model_copy(update={"readout_layer": None})
        return self.untrained(schema)

    def untrained(self, schema: Schema) -> "LLMRanker":
        """The ranker as the fine-tune starts it (LoRA the identity, heads at their seeded draw, the configured
        readout): :meth:`predict`'s ``pooled`` output is then the frozen state the heads would read."""
        self._start(schema)
        if self.backbone_dir is not None or self.cfg.backbone != "tiny":
            self._load(self.backbone_dir or backbone_dir(self.cfg, self.cache_dir))
            self._seeded_build()
        self._describe(0, 0, TrainReport(exposure=exposure([], np.zeros(0), 0)), {})
        return self

    def predict(self, split: Split) -> dict[str, np.ndarray]:
        if self.model is None:  # a zero-shot tiny backbone: built from the prompts it scores
            self._load(shared_backbone(self.cfg, self.cache_dir, split))
            self._seeded_build()
            self.info |= self._loaded()
        ids = self.token_ids(split)
        t0 = time.perf_counter()
        with torch_threads(self.cfg.threads), self.model.merged() as model:
            out = predict(model, ids, self.backbone.pad_id, self.cfg.score_batch_size, self.dtype, self.progress,
                          prefixes=self.prefixes)
        self.info["score_leads_per_s"] = round(len(ids) / max(time.perf_counter() - t0, 1e-9), 2)
        self.info |= self._cache_info("scored")
        return out

    def token_ids(self, split: Split) -> list[list[int]]:
        """Each lead's prompt as the model reads it (the dialogue trimmed to the budget), as token ids."""
        return self._encode(self.builder.parts(split))[0]

    def close(self) -> None:
        """Delete the kept final weights (:meth:`Trainer.discard`): call once the scores are stored."""
        if self.trainer is not None:
            self.trainer.discard()

    # ---- helpers ----------------------------------------------------------------------------------
    def _start(self, schema: Schema) -> None:
        self.builder = PromptBuilder(schema, make_summarizer(self.cfg.summarizer, self.cfg.summarize_min_words))
        self.model = self.prefixes = self.trainer = None

    def _load(self, path: Path) -> None:
        """Load the backbone build at ``path`` and the prompt budget of its tokenizer."""
        self.path = path
        self.backbone = load_backbone(self.cfg, self.cache_dir, path=path)
        self.budget = TokenBudget(hf_token_spans(self.backbone.tokenizer), self.cfg.max_length,
                                  self.cfg.dialogue_tokens, self.backbone.n_special)

    def _build(self) -> None:
        """The ranker (LoRA, heads) on the loaded backbone, drawn from the caller's torch RNG, and its cache."""
        self.model = LeadRanker(self.backbone, self.cfg, self.head_names)
        self.prefixes = open_cache(self.model, self.cfg, self.cache_dir, self.path.name, self.dtype)

    def _seeded_build(self) -> None:
        with torch.random.fork_rng(), torch_threads(self.cfg.threads):
            torch.manual_seed(self.seed)
            self._build()

    def _loaded(self) -> dict[str, Any]:
        """What ``info`` says of the backbone and the ranker on it (nothing before a zero-shot tiny one is built)."""
        if self.model is None:
            return {}
        return {**self.backbone.describe(), "backbone_build": self.path.name,
                "trainable_params": sum(p.numel() for p in self.model.parameters() if p.requires_grad)}

    def _describe(self, leads: int, positives: int, report: TrainReport, extra: dict[str, Any]) -> None:
        """``info``: the backbone, what was trained (``leads``, ``positives``: 0 for zero-shot) and how."""
        self.train_losses = report.batch_losses
        self.info = {**self._loaded(), "backbone_shared": self.backbone_dir is not None,
                     "dtype": str(self.dtype).removeprefix("torch."),
                     "prompt_parts": "table+text" if self.builder.schema.has_text else "table-only",
                     "train_leads": leads, "train_positives": positives,
                     "loss_terms": {t.name: t.weight for t in self.terms}, **extra, **report.to_dict(),
                     **self._cache_info("fit")}

    def _cache_info(self, phase: str) -> dict[str, Any]:
        """The frozen-prefix cache's figures after training (``fit``) and after the scoring passes since
        (``scored``, cumulative); None where it is off or nothing is frozen. ``hits`` counts prefixes read
        (one per training draw and scored lead), ``misses`` the prompts this ranker computed: in ``fit``
        those no other row or run had stored."""
        return {f"prefix_cache_{phase}": None if self.prefixes is None else self.prefixes.describe()}

    def _encode(self, parts: list[PromptParts]) -> tuple[list[list[int]], dict[str, Any]]:
        prompts = self.budget.fit(parts)
        ids = self.backbone.tokenizer(prompts)["input_ids"]
        n = np.array([len(x) for x in ids])
        trimmed = np.mean([p != part.render() for p, part in zip(prompts, parts)]) if parts else 0.0
        return ids, {"prompt_tokens_mean": round(float(n.mean()), 1) if len(n) else 0,
                     "prompt_tokens_max": int(n.max()) if len(n) else 0,
                     "dialogue_trimmed_share": round(float(trimmed), 4)}

    def summary_info(self, split: Split, parts: list[PromptParts]) -> dict[str, Any]:
        """Token reduction of the summarizer on this split's transcripts (backbone tokenizer)."""
        if not split.schema.has_text:
            return {"summarizer": None}
        raw = ["\n\n".join(col) for col in zip(*(split.texts[c] for c in split.schema.text))]
        short = [p.dialogue for p in parts]
        count = self.backbone.tokenizer(raw + short, add_special_tokens=False)["input_ids"]
        before, after = np.array([len(x) for x in count[:len(raw)]]), np.array([len(x) for x in count[len(raw):]])
        long = np.array([n_words(t) > self.cfg.summarize_min_words for t in raw])
        return {"summarizer": self.builder.summarizer.name, "summarized_share": round(float(long.mean()), 4),
                "summary_token_reduction_long": _reduction(before[long], after[long]),
                "summary_token_reduction_all": _reduction(before, after)}

    def _checkpoint_dir(self, train: Split, targets: dict[str, np.ndarray], backbone: Path) -> Path | None:
        if not self.cfg.checkpoint_every:
            return None
        h = hashlib.sha256(json.dumps({"cfg": self.cfg.to_dict(), "seed": self.seed, "heads": self.head_names,
                                       "terms": [(t.name, t.weight) for t in self.terms]},
                                      sort_keys=True, default=str).encode())
        h.update(str(train.ids.tolist()).encode() + backbone.name.encode())
        for k in sorted(targets):
            h.update(k.encode() + np.ascontiguousarray(targets[k]).tobytes())
        return self.cache_dir / "llm_checkpoints" / h.hexdigest()[:20]


def _reduction(before: np.ndarray, after: np.ndarray) -> float | None:
    return round(1 - float(after.sum()) / float(before.sum()), 4) if before.sum() else None

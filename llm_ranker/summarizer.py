"""Shorten long call transcripts before they enter a prompt.

The paper summarizes long ASR transcripts with an LLM (about 60 % shorter).
The default here is *extractive*: fast, deterministic and dependency-free, so
the CPU profiles can afford it on every lead. A transcript is a sequence of
calls separated by blank lines; each call starts with a header line
(``[call 2 on 2024-07-21]``) followed by ``Speaker: text`` turns. The
extractive summarizer keeps every header and only the turns that carry
purchase-relevant content — money, commitments and dates, competitors,
decision makers, trade-ins, test drives — and drops greetings, closings and
small talk. Kept turns lose ASR fillers ("uh", "[inaudible]").

The lexicon is a generic auto-sales one (regular expressions matched as whole words; give
:class:`ExtractiveSummarizer` other ``keywords`` for another domain). On the synthetic world it
covers every fact the generator can state, so it is an optimistic summarizer
there; the token reduction it reaches is recorded in the result JSON.

``llm.summarizer: /path/to/local/causal-lm`` swaps in :class:`LocalLMSummarizer`
(abstractive, greedy decoding with a local instruction model, e.g. for the
``paper`` profile on a GPU). ``none`` keeps transcripts as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

from feature_store.errors import ConfigError

SALIENT = (  # whole-word patterns: "date" must not match "updates"
    r"price (is|was)", r"expensive", r"too high", r"discount", r"budget", r"afford\w*", r"deposit", r"paid",
    r"loan", r"financ\w*", r"instal+ments?", r"interest rate", r"down payment", r"lease",
    r"order", r"contract", r"sign", r"book(ed)?", r"appointment", r"confirm", r"deliver\w*", r"pick[- ]up", r"date",
    r"test drive", r"trade[- ]in", r"wife", r"husband", r"discuss", r"decide", r"agree", r"competitor",
    r"other brand",
)
FILLERS = re.compile(r"\buh\s+|\s*\[inaudible\]")


class Summarizer(Protocol):
    name: str

    def __call__(self, texts: list[str]) -> list[str]: ...


def n_words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class NoSummarizer:
    name: str = "none"

    def __call__(self, texts: list[str]) -> list[str]:
        return list(texts)


@dataclass(frozen=True)
class ExtractiveSummarizer:
    """Keep call headers and salient turns of transcripts longer than ``min_words``."""

    min_words: int = 150
    keywords: tuple[str, ...] = SALIENT
    name: str = "extractive"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_pattern", re.compile(r"\b(" + "|".join(self.keywords) + r")\b", re.I))

    def __call__(self, texts: list[str]) -> list[str]:
        return [self.summarize(t) if n_words(t) > self.min_words else t for t in texts]

    def summarize(self, text: str) -> str:
        return "\n\n".join(self._call(block) for block in text.split("\n\n") if block.strip())

    def _call(self, block: str) -> str:
        lines = block.split("\n")
        header = lines[0] if _is_header(lines[0]) else None
        turns = lines[1:] if header else lines
        kept = [FILLERS.sub("", t).strip() for t in turns if self._salient(t)]
        return "\n".join(([header] if header else []) + kept)

    def _salient(self, turn: str) -> bool:
        return self._pattern.search(turn) is not None


def _is_header(line: str) -> bool:
    return line.startswith("[") and line.rstrip().endswith("]") and ":" not in line


@dataclass
class LocalLMSummarizer:
    """Abstractive: a local instruction-tuned causal LM rewrites each long transcript (greedy)."""

    path: str
    min_words: int = 150
    max_new_tokens: int = 256
    name: str = "local-lm"

    INSTRUCTION = ("Summarize this sales call transcript in a few lines. Keep every fact about price, "
                   "financing, deposits, dates, test drives, competitors and who decides.\n\n")

    def __post_init__(self) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(self.path, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(self.path, local_files_only=True).eval()

    def __call__(self, texts: list[str]) -> list[str]:
        return [self._summarize(t) if n_words(t) > self.min_words else t for t in texts]

    def _summarize(self, text: str) -> str:
        import torch

        enc = self.tokenizer(self.INSTRUCTION + text + "\n\nSummary:", return_tensors="pt")
        with torch.no_grad():
            out = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False)
        return self.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def make_summarizer(spec: str, min_words: int) -> Summarizer:
    """``extractive`` | ``none`` | a path to a local causal LM directory."""
    if spec == "extractive":
        return ExtractiveSummarizer(min_words=min_words)
    if spec == "none":
        return NoSummarizer()
    from pathlib import Path

    if Path(spec).is_dir():
        return LocalLMSummarizer(spec, min_words=min_words)
    raise ConfigError(f"llm.summarizer must be 'extractive', 'none' or a local model directory, not '{spec}'")

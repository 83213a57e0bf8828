"""The hierarchical prompt of asLLR: one lead as text, ending in a yes/no question.

Layout (see ``tests/golden/prompt.txt`` for a full example)::

    Lead profile
    - Customer profile: age 37, gender male, income band high, ...
    - Location: city city_253, province prov_22, city tier tier_5
    - ...                                       (one line per feature group of the spec)
    - Funnel: current stage contacted           (where the data has a current stage)
    Sales calls, newest first:
    [call 2 on 2024-07-21]
    Customer: Can I trade in my current car? ...
    <blank line>
    [call 1 on 2024-07-20]
    ...
    Will this lead lock an order? Answer:

and the model's next token is the answer, " Yes" or " No".

The *table part* (profile + funnel + question) is never trimmed. The dialogue
(summarized first, see :mod:`llm_ranker.summarizer`) gets at most
``dialogue_tokens`` tokens and whatever ``max_length`` leaves after the table
part; it is cut at a line boundary, so the oldest calls go first. A lead whose
table part alone exceeds ``max_length`` keeps its whole table and no dialogue.

Text columns hold calls oldest first, separated by blank lines (the synthetic
world's format, and the convention for user data); data without text gives a
table-only prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd

from feature_store.schema import Schema
from feature_store.split import Split
from llm_ranker.summarizer import Summarizer

QUESTION = "Will this lead lock an order? Answer:"
ANSWERS = (" Yes", " No")  # the answer tokens the QA loss and the qa scoring rule read
DIALOGUE_HEADER = "Sales calls, newest first:"

# texts -> for each text, the (start, end) character span of every token
TokenSpans = Callable[[list[str]], list[list[tuple[int, int]]]]


def hf_token_spans(tokenizer) -> TokenSpans:
    """Token spans from a Hugging Face fast tokenizer (no special tokens)."""
    def spans(texts: list[str]) -> list[list[tuple[int, int]]]:
        if not texts:
            return []
        return tokenizer(texts, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return spans


def whitespace_token_spans(texts: list[str]) -> list[list[tuple[int, int]]]:
    """One token per whitespace-separated word (tests and tokenizer-free estimates)."""
    return [[m.span() for m in re.finditer(r"\S+", t)] for t in texts]


def format_value(v) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return "unknown"
    if isinstance(v, (float, np.floating)):
        return str(int(v)) if float(v).is_integer() else f"{v:.4g}"
    return str(v)


@dataclass(frozen=True)
class PromptParts:
    """One lead before the token budget: the fixed table part and the (summarized) dialogue."""

    table: str
    dialogue: str

    def render(self, dialogue: str | None = None) -> str:
        d = self.dialogue if dialogue is None else dialogue
        middle = f"{DIALOGUE_HEADER}\n{d}\n" if d else ""
        return f"{self.table}\n{middle}{QUESTION}"


class PromptBuilder:
    """Serialises leads into :class:`PromptParts` (no tokenizer needed)."""

    def __init__(self, schema: Schema, summarizer: Summarizer):
        self.schema, self.summarizer = schema, summarizer

    # ---- text ---------------------------------------------------------------
    def parts(self, split: Split) -> list[PromptParts]:
        tables = self._tables(split)
        dialogues = self.dialogues(split)
        return [PromptParts(t, d) for t, d in zip(tables, dialogues)]

    def _tables(self, split: Split) -> list[str]:
        raw, lines = split.raw, []
        grouped = [c for cols in self.schema.groups.values() for c in cols]
        groups = dict(self.schema.groups)
        rest = [c for c in raw.columns if c not in grouped and c not in self.schema.text]
        if rest:
            groups["Other features"] = tuple(rest)
        for title, cols in groups.items():
            cells = [[f"{c.replace('_', ' ')} {format_value(v)}" for v in raw[c].tolist()] for c in cols]
            lines.append([f"- {title}: " + ", ".join(row) for row in zip(*cells)])
        if split.stage is not None:
            names = self.schema.stage_order
            lines.append([f"- Funnel: current stage {names[s] if 0 <= s < len(names) else 'unknown'}"
                          for s in split.stage.tolist()])
        return ["Lead profile\n" + "\n".join(row) for row in zip(*lines)] if lines else ["Lead profile"] * len(split)

    def dialogues(self, split: Split) -> list[str]:
        """Summarized transcripts, calls newest first (all text columns, in schema order)."""
        per_column = [self.summarizer(split.texts[c]) for c in self.schema.text]
        return ["\n\n".join(b for col in cols for b in reversed(col.split("\n\n")) if b.strip())
                for cols in zip(*per_column)] if per_column else [""] * len(split)


@dataclass(frozen=True)
class TokenBudget:
    """Renders parts within ``max_length`` tokens, giving the dialogue at most ``dialogue_tokens``."""

    spans: TokenSpans
    max_length: int
    dialogue_tokens: int
    n_special: int = 0  # tokens the tokenizer adds (e.g. BOS)

    def fit(self, parts: list[PromptParts]) -> list[str]:
        """Render every lead within budget: dialogue cut at a line boundary, table part untouched."""
        fixed = [len(s) + self.n_special for s in self.spans([p.render("") for p in parts])]
        header = len(self.spans([DIALOGUE_HEADER + "\n"])[0]) + 1
        budget = [min(self.dialogue_tokens, max(0, self.max_length - f - header)) for f in fixed]
        out = [p.render(cut(p.dialogue, s, b)) for p, s, b in zip(parts, self.spans([p.dialogue for p in parts]),
                                                                   budget)]
        # BPE counts are not exactly additive across joints: shave until every prompt fits.
        for _ in range(8):
            n = [len(s) + self.n_special for s in self.spans(out)]
            over = [i for i, (k, f) in enumerate(zip(n, fixed)) if k > max(self.max_length, f)]
            if not over:
                return out
            for i in over:
                budget[i] = max(0, budget[i] - (n[i] - max(self.max_length, fixed[i])) - 1)
                d = parts[i].dialogue
                out[i] = parts[i].render(cut(d, self.spans([d])[0], budget[i]))
        raise RuntimeError("prompt budget did not converge")  # pragma: no cover - would be a tokenizer bug


def cut(text: str, spans: list[tuple[int, int]], budget: int) -> str:
    """``text`` within ``budget`` tokens: whole lines from the start, or a token cut inside the first line."""
    if len(spans) <= budget:
        return text
    if budget <= 0:
        return ""
    end = spans[budget - 1][1]
    line_end = text.rfind("\n", 0, end + 1)
    return text[:line_end].rstrip() if line_end > 0 else text[:end]

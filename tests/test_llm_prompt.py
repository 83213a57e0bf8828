"""Prompt builder, token budget and summarizer of the LLM ranker."""

import os
from pathlib import Path

import numpy as np
import pytest
from llm_fixtures import CALL_1, CALL_2, make_split, tiny_backbone

from llm_ranker.prompt import DIALOGUE_HEADER, QUESTION, PromptBuilder, TokenBudget, hf_token_spans, whitespace_token_spans
from llm_ranker.summarizer import ExtractiveSummarizer, NoSummarizer

GOLDEN = Path(__file__).parent / "golden" / "prompt.txt"


def build(split, max_length=10_000, dialogue_tokens=2000, summarizer=None, spans=whitespace_token_spans):
    parts = PromptBuilder(split.schema, summarizer or ExtractiveSummarizer()).parts(split)
    return parts, TokenBudget(spans, max_length, dialogue_tokens).fit(parts)


def test_prompt_matches_the_golden_file():
    """One full prompt: feature groups as sections, the current stage, calls newest first, the question.
    Regenerate with UPDATE_GOLDEN=1 after an intended change, and review the diff."""
    _, prompts = build(make_split(1))
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(prompts[0] + "\n")
    assert prompts[0] + "\n" == GOLDEN.read_text()


def test_prompt_is_deterministic_and_orders_calls_newest_first():
    a, b = build(make_split(3))[1], build(make_split(3))[1]
    assert a == b
    assert a[0].index("[call 2 on") < a[0].index("[call 1 on")
    assert a[0].endswith(QUESTION)


def test_budget_trims_dialogue_never_the_table():
    parts, full = build(make_split(1))
    table_tokens = len(whitespace_token_spans([parts[0].render("")])[0])
    limit = table_tokens + 20
    _, (short,) = build(make_split(1), max_length=limit)
    n = len(whitespace_token_spans([short])[0])
    assert n <= limit < len(whitespace_token_spans([full[0]])[0])
    assert short.startswith(parts[0].table + "\n") and short.endswith("\n" + QUESTION)
    assert "[call 2 on" in short and "[call 1 on" not in short  # the oldest call goes first
    # the dialogue is cut at a line boundary: every kept line is a whole line of the transcript
    kept = short[len(parts[0].table) + 1:-len(QUESTION)].strip().splitlines()[1:]
    assert kept and all(line in (CALL_1 + "\n" + CALL_2).splitlines() for line in kept)


def test_dialogue_budget_caps_the_dialogue_even_when_max_length_allows_more():
    parts, (p,) = build(make_split(1), dialogue_tokens=12)
    dialogue = p[len(parts[0].table) + 1:-len(QUESTION)].removeprefix(DIALOGUE_HEADER + "\n")
    assert 0 < len(dialogue.split()) <= 12


def test_a_table_longer_than_max_length_is_kept_whole_without_dialogue():
    parts, (p,) = build(make_split(1), max_length=5)
    assert p == parts[0].render("") and "Sales calls" not in p


def test_budget_holds_with_a_real_bpe_tokenizer(tmp_path):
    split = make_split(20)
    backbone = tiny_backbone(tmp_path)
    spans = hf_token_spans(backbone.tokenizer)
    parts = PromptBuilder(split.schema, NoSummarizer()).parts(split)
    fixed = max(len(s) for s in spans([p.render("") for p in parts]))
    budget = TokenBudget(spans, fixed + 15, 2000, backbone.n_special)
    prompts = budget.fit(parts)
    lengths = [len(x) for x in backbone.tokenizer(prompts)["input_ids"]]
    assert max(lengths) <= fixed + 15
    assert all(p.startswith(part.table) and p.endswith(QUESTION) for p, part in zip(prompts, parts))
    assert any("Sales calls" in p for p in prompts)


def test_data_without_text_gives_a_table_only_prompt():
    _, (p,) = build(make_split(1, with_text=False))
    assert "Sales calls" not in p and p.startswith("Lead profile\n- Customer profile: age 34")
    assert p.endswith(QUESTION)


def test_missing_values_and_ungrouped_features_are_rendered():
    _, prompts = build(make_split(2))
    assert "budget k unknown" in prompts[1] and "- Other features: channel app" in prompts[0]


# ---- summarizer ------------------------------------------------------------------------------------
SMALL_TALK = "\n".join(["Advisor: Eight years or one hundred sixty thousand kilometres on the battery pack.",
                        "Customer: What about the software updates, are they free?"] * 10)


def test_extractive_summarizer_keeps_facts_and_headers_and_drops_small_talk():
    text = ("[call 1 on 2024-01-02]\nAdvisor: Hello uh there.\n" + SMALL_TALK
            + "\nCustomer: Honestly I uh already paid a deposit for the BYD Song last week. [inaudible]"
            + "\n\n[call 2 on 2024-01-05]\n" + SMALL_TALK + "\nCustomer: We have fixed the pick-up date, it is the 20th.")
    (out,) = ExtractiveSummarizer(min_words=50)([text])
    assert out == ("[call 1 on 2024-01-02]\nCustomer: Honestly I already paid a deposit for the BYD Song last week."
                   "\n\n[call 2 on 2024-01-05]\nCustomer: We have fixed the pick-up date, it is the 20th.")
    assert len(out.split()) < 0.2 * len(text.split())


def test_short_transcripts_are_left_alone():
    text = CALL_1
    assert ExtractiveSummarizer(min_words=150)([text]) == [text]


@pytest.mark.parametrize("turn, salient", [("Customer: What about the software updates?", False),
                                           ("Customer: The price is too high for me.", True),
                                           ("Advisor: I can send you the price list.", False),
                                           ("Customer: I need to discuss it with my wife first.", True)])
def test_salience_matches_whole_words(turn, salient):
    assert ExtractiveSummarizer()._salient(turn) is salient


def test_summary_reduces_tokens_on_long_transcripts():
    texts = [SMALL_TALK + "\nCustomer: Can I get a car loan?"] * 3 + ["short call"]
    out = ExtractiveSummarizer(min_words=50)(texts)
    before, after = (np.array([len(t.split()) for t in x]) for x in (texts, out))
    assert after[:3].sum() < 0.1 * before[:3].sum() and out[3] == texts[3]


def test_a_local_model_directory_plugs_in_as_an_abstractive_summarizer(tmp_path):
    """Plumbing only (the tiny model is random): long transcripts are rewritten, short ones kept."""
    from llm_ranker.backbones import build_tiny
    from llm_ranker.config import TinyBackbone
    from llm_ranker.summarizer import LocalLMSummarizer, make_summarizer

    path = build_tiny(TinyBackbone(vocab=400), [CALL_1, CALL_2] * 5, tmp_path)
    summarizer = make_summarizer(str(path), min_words=30)
    assert isinstance(summarizer, LocalLMSummarizer)
    summarizer.max_new_tokens = 5
    long, short = CALL_1 + "\n\n" + CALL_2, "[call 1 on 2024-01-01]\nCustomer: hi"
    out = summarizer([long, short])
    assert isinstance(out[0], str) and out[0] != long and out[1] == short

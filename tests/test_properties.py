"""Property tests (hypothesis): metrics and prompt trimming hold for any input, not just the examples."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from benchmark.metrics import point, top_k
from llm_ranker.prompt import DIALOGUE_HEADER, PromptParts, TokenBudget, whitespace_token_spans

KEYS = ("p_at_0.1", "p_at_1.0", "p_at_5.0", "r_at_1.0", "r_at_5.0", "r_at_30.0")


@st.composite
def labelled_scores(draw, ties: bool = True):
    n = draw(st.integers(4, 300))
    y = np.array(draw(st.lists(st.integers(0, 1), min_size=n, max_size=n)))
    if y.min() == y.max():
        y[0] = 1 - y[0]
    values = st.integers(0, 6) if ties else st.floats(-1e6, 1e6, allow_nan=False)
    scores = np.array(draw(st.lists(values, min_size=n, max_size=n, unique=not ties)), dtype=np.float64)
    return y, scores


@settings(max_examples=60, deadline=None)
@given(labelled_scores(), st.sampled_from([np.exp, np.tanh, lambda x: 3 * x + 7, lambda x: np.cbrt(x) - 1]))
def test_auc_is_invariant_to_monotone_transforms_and_matches_sklearn(data, transform):
    y, s = data
    auc = point("auc", y, s)
    assert math.isclose(auc, roc_auc_score(y, s), abs_tol=1e-12)
    assert math.isclose(point("auc", y, transform(s / 10.0)), point("auc", y, s / 10.0), abs_tol=1e-12)


@settings(max_examples=60, deadline=None)
@given(labelled_scores(ties=True))
def test_top_k_metrics_lie_between_what_any_tie_order_allows(data):
    y, s = data
    n, k_pos = len(y), int(y.sum())
    for key in KEYS:
        k = top_k(n, float(key.split("_at_")[1]))
        best = np.lexsort((-y, -s))[:k]  # ties broken in favour of positives
        worst = np.lexsort((y, -s))[:k]  # ... and against them
        scale = k if key.startswith("p") else k_pos
        lo, hi = y[worst].sum() / scale, y[best].sum() / scale
        assert lo - 1e-12 <= point(key, y, s) <= hi + 1e-12, key


@settings(max_examples=60, deadline=None)
@given(labelled_scores(ties=False))
def test_without_ties_top_k_metrics_equal_a_sorted_list(data):
    y, s = data
    ranked = y[np.argsort(-s)]
    for key in KEYS:
        k = top_k(len(y), float(key.split("_at_")[1]))
        expected = ranked[:k].sum() / (k if key.startswith("p") else y.sum())
        assert math.isclose(point(key, y, s), expected, abs_tol=1e-12), key


words = st.text(alphabet="abcdefghij", min_size=1, max_size=6)
lines = st.lists(words, min_size=1, max_size=8).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.lists(words, min_size=1, max_size=20).map(" ".join),
                          st.lists(lines, min_size=0, max_size=40).map("\n".join)), min_size=1, max_size=5),
       st.integers(1, 200), st.integers(0, 300))
def test_prompt_trimming_never_exceeds_the_budget_and_keeps_the_table(leads, max_length, dialogue_tokens):
    parts = [PromptParts(table, dialogue) for table, dialogue in leads]
    budget = TokenBudget(whitespace_token_spans, max_length, dialogue_tokens)
    for part, prompt in zip(parts, budget.fit(parts)):
        n, fixed = (len(x) for x in whitespace_token_spans([prompt, part.render("")]))
        assert n <= max(max_length, fixed)  # the table part is never cut, even when it alone is too long
        assert prompt.startswith(part.table)
        header = len(whitespace_token_spans([DIALOGUE_HEADER])[0]) if n > fixed else 0
        assert n - fixed - header <= dialogue_tokens

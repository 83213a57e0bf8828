"""Hand-made leads and a tiny backbone shared by the tests/test_llm_*.py files."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from feature_store.schema import Schema
from feature_store.split import Split
from leadrank_api import torch_threads
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm, answer_ce, pointwise_bce

CALL_1 = """[call 1 on 2024-03-02]
Advisor: Hello, this is Li Wei from the Zephyr showroom, is now a good time?
Customer: Uh, yes, go ahead.
Customer: Can I pay in instalments? What are the financing options?
Advisor: Thank you for your time, have a nice day."""
CALL_2 = """[call 2 on 2024-03-09]
Advisor: Hi, Li Wei here calling about your interest in the Zephyr.
Customer: Please confirm my test drive appointment for the weekend.
Customer: Thanks, bye."""
TRANSCRIPT = CALL_1 + "\n\n" + CALL_2

GROUPS = {"Customer profile": ("age", "income_band"), "Vehicle interest": ("model_of_interest", "budget_k")}


def make_split(n: int = 1, texts: list[str] | None = None, with_text: bool = True, labels=None) -> Split:
    """``n`` leads of a small schema (two feature groups, one transcript column, a current stage)."""
    rng = np.random.default_rng(0)
    raw = pd.DataFrame({"age": [34] + list(rng.integers(20, 70, n - 1)),
                        "income_band": ["upper_mid"] + ["low"] * (n - 1),
                        "model_of_interest": ["Zephyr"] * n,
                        "budget_k": [182.5] + [np.nan] * (n - 1),
                        "channel": ["app"] * n})
    text_cols = ("transcript",) if with_text else ()
    if with_text:
        raw["transcript"] = texts if texts is not None else [TRANSCRIPT] * n
    schema = Schema(dataset="hand", categorical=("income_band", "model_of_interest", "channel"),
                    numeric=("age", "budget_k"), text=text_cols, cardinalities={},
                    stage_order=("new", "contacted", "visited", "test_drive"), final_stage_order=(),
                    groups=GROUPS)
    y = np.zeros(n, dtype=np.int8) if labels is None else np.asarray(labels, dtype=np.int8)
    return Split(name="train", schema=schema, ids=np.arange(n), time=np.zeros(n, dtype="datetime64[ns]"),
                 cat=np.zeros((n, 3), dtype=np.int64), num=np.zeros((n, 2), dtype=np.float32), raw=raw,
                 texts={c: list(raw[c]) for c in text_cols}, stage=np.array([1] + [0] * (n - 1)), _label=y)


def tiny_backbone(cache_dir, corpus: list[str] | None = None, **shape):
    """A tiny random-init Qwen2 backbone whose BPE is trained on ``corpus`` (default: hand-made prompts)."""
    from llm_ranker.backbones import load_backbone
    from llm_ranker.config import LLMParams, TinyBackbone
    from llm_ranker.prompt import PromptBuilder
    from llm_ranker.summarizer import ExtractiveSummarizer

    if corpus is None:
        split = make_split(50)
        corpus = [p.render() for p in PromptBuilder(split.schema, ExtractiveSummarizer()).parts(split)]
    cfg = LLMParams(tiny=TinyBackbone(vocab=shape.pop("vocab", 600), **shape))
    return load_backbone(cfg, cache_dir, corpus)


# ---- a trainable tiny ranker (tests/test_llm_model.py, tests/test_lora_layers.py) ---------------------

TRAIN_CFG = LLMParams(lr_heads=3e-3, lr_lora=3e-3, batch_size=8, pos_rate=0.5, warmup_ratio=0.0, head_dropout=0.1)
TERMS = [LossTerm("bce", 2.0, pointwise_bce), LossTerm("ce", 0.5, answer_ce)]
HOT = "Lead profile\n- Signals: intent {w}, calls {n}\nWill this lead lock an order? Answer:"


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny matrices: one thread is several times faster than two on a busy 2-core box."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def backbone_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("bb")

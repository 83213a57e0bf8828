"""Throughput of the LLM ranker's backbone at a profile's prompt lengths.

Measures, in one process and one precision:

* scoring and training leads/s (and tokens/s) through the real code paths
  (:func:`llm_ranker.trainer.predict`, :class:`llm_ranker.trainer.Trainer`) on
  real prompts of a small synthetic world;
* the share of padding tokens in training batches with length bucketing and
  without (random batches of the same draws), and in scoring batches;
* achieved FLOP/s — 2 x (non-embedding parameters) x (real tokens) for a
  forward; 4 x for training (forward + input-gradient backward; the frozen
  weights get no weight gradient) — as a ratio to a plain ``torch.matmul`` of
  the model's own linear shapes, same dtype, same threads, measured in the
  same run. Attention FLOPs are not counted, so the ratio is conservative.

Usage::

    .venv/bin/python bench/llm_throughput.py --profile standard --score-leads 64 --train-leads 16
    .venv/bin/python bench/llm_throughput.py --set llm.dtype=fp32 --set llm.threads=1 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from benchmark.contract import tiny_entry  # noqa: E402
from benchmark.profile import load_profile  # noqa: E402
from benchmark.runner import cache_dir, load_splits  # noqa: E402
from llm_ranker.backbones import compute_dtype, fast_cpu_bf16, load_backbone  # noqa: E402
from llm_ranker.config import LLMConfig  # noqa: E402
from llm_ranker.losses import LossTerm, answer_ce, pointwise_bce  # noqa: E402
from llm_ranker.model import LeadRanker  # noqa: E402
from llm_ranker.prompt import PromptBuilder, TokenBudget, hf_token_spans  # noqa: E402
from llm_ranker.sampler import BucketedOversampler, oversample, padding_share, sorted_batches  # noqa: E402
from llm_ranker.summarizer import make_summarizer  # noqa: E402
from llm_ranker.trainer import Trainer, predict, torch_threads  # noqa: E402


def linear_shapes(config) -> list[tuple[int, int]]:
    """(in, out) of every linear layer of one decoder block."""
    h, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q, kv = config.num_attention_heads * head_dim, config.num_key_value_heads * head_dim
    return [(h, q), (h, kv), (h, kv), (q, h), (h, inter), (h, inter), (inter, h)]


def gemm_flops_per_s(shapes: list[tuple[int, int]], rows: int, dtype: torch.dtype, device: torch.device,
                     repeats: int = 3) -> float:
    """FLOP/s of plain matmuls of the model's shapes with ``rows`` token rows (one block's worth)."""
    mats = [(torch.randn(rows, i, device=device, dtype=dtype), torch.randn(i, o, device=device, dtype=dtype))
            for i, o in shapes]
    flops = sum(2 * rows * i * o for i, o in shapes)
    for a, w in mats:  # warm-up
        a @ w
    t0 = time.perf_counter()
    for _ in range(repeats):
        for a, w in mats:
            a @ w
    return repeats * flops / (time.perf_counter() - t0)


def prompts_ids(cfg: LLMConfig, cache: Path, data_dir: Path, n: int):
    """Token ids of ``n`` real training prompts (a 3,000-lead synthetic world) and the backbone."""
    from benchmark.contract import contract_profile

    _, splits = load_splits(tiny_entry("table1"), contract_profile(data_dir))
    train = splits.train.take(np.arange(min(n, len(splits.train))))
    parts = PromptBuilder(train.schema, make_summarizer(cfg.summarizer, cfg.summarize_min_words)).parts(train)
    backbone = load_backbone(cfg, cache, corpus=[p.render() for p in parts])
    budget = TokenBudget(hf_token_spans(backbone.tokenizer), cfg.max_length, cfg.dialogue_tokens, backbone.n_special)
    return backbone, backbone.tokenizer(budget.fit(parts))["input_ids"], train.y


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--score-leads", type=int, default=64)
    ap.add_argument("--train-leads", type=int, default=16)
    ap.add_argument("--padding-leads", type=int, default=1500, help="prompts used for the padding shares")
    ap.add_argument("--compile", action="store_true", help="torch.compile the decoder (dynamic shapes)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)

    profile = load_profile(a.profile, a.overrides)
    cfg = LLMConfig.from_config(profile.config)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = compute_dtype(cfg, device)
    report: dict = {"profile": profile.name, "backbone": cfg.backbone, "max_length": cfg.max_length,
                    "dtype": str(dtype).removeprefix("torch."), "device": str(device),
                    "cpu": platform.processor() or platform.machine(), "amx_bf16": fast_cpu_bf16(),
                    "threads": cfg.threads or torch.get_num_threads(), "compile": a.compile}
    with torch_threads(cfg.threads):
        t0 = time.perf_counter()
        backbone, ids, labels = prompts_ids(cfg, cache_dir(profile), Path(profile.get("data_dir", "data")),
                                            max(a.padding_leads, a.score_leads, a.train_leads))
        report["load_s"] = round(time.perf_counter() - t0, 1)
        lengths = np.array([len(x) for x in ids])
        report["prompt_tokens"] = {"mean": round(float(lengths.mean()), 1), "p50": int(np.median(lengths)),
                                   "max": int(lengths.max())}

        # padding: the same epoch of draws, batched by length buckets vs in random order
        rng = np.random.default_rng(0)
        draws = oversample(labels, cfg.pos_rate, rng)
        random_batches = [draws[i:i + cfg.batch_size] for i in range(0, len(draws), cfg.batch_size)]
        bucketed = BucketedOversampler(cfg.batch_size, cfg.pos_rate, cfg.bucket_batches).batches(
            lengths, {"label": labels}, np.random.default_rng(0))
        report["padding_share"] = {"train_random": round(padding_share(random_batches, lengths), 4),
                                   "train_bucketed": round(padding_share(bucketed, lengths), 4),
                                   "score_sorted": round(padding_share(sorted_batches(lengths, cfg.score_batch_size),
                                                                      lengths), 4)}

        params = sum(p.numel() for n, p in backbone.model.named_parameters() if "embed" not in n and "lm_head" not in n)
        report["non_embedding_params"] = params
        model = LeadRanker(backbone, cfg).to(device)
        if a.compile:
            decoder = model.lm.get_base_model().model
            model.lm.get_base_model().model = torch.compile(decoder, dynamic=True)
            predict(model, ids[:cfg.score_batch_size], backbone.pad_id, cfg.score_batch_size, dtype)  # compile

        # scoring (a warm-up batch first)
        predict(model, ids[:2], backbone.pad_id, 2, dtype)
        sample = ids[:a.score_leads]
        tokens = int(sum(len(x) for x in sample))
        t0 = time.perf_counter()
        predict(model, sample, backbone.pad_id, cfg.score_batch_size, dtype)
        dt = time.perf_counter() - t0
        score_flops = 2 * params * tokens / dt

        # training: the real trainer on a few leads
        train_ids, train_y = ids[:a.train_leads], labels[:a.train_leads]
        terms = [LossTerm("bce", cfg.alpha, pointwise_bce), LossTerm("ce", cfg.lambda_ce, answer_ce)]
        trainer = Trainer(cfg.replace(pos_rate=0.0), terms, BucketedOversampler(cfg.batch_size, 0.0), seed=0,
                          dtype=dtype)
        rep = trainer.fit(model, train_ids, {"label": train_y}, backbone.pad_id)
        train_tokens = int(sum(len(x) for x in train_ids))
        train_flops = 4 * params * train_tokens / rep.seconds

        rows = int(cfg.score_batch_size * lengths.mean())
        gemm = gemm_flops_per_s(linear_shapes(backbone.model.config), rows, dtype, device)
    report |= {
        "score": {"leads": len(sample), "leads_per_s": round(len(sample) / dt, 3), "tokens_per_s": round(tokens / dt, 1),
                  "gflop_per_s": round(score_flops / 1e9, 2), "ratio_to_gemm": round(score_flops / gemm, 3)},
        "train": {"leads": len(train_ids), "leads_per_s": round(len(train_ids) / rep.seconds, 3),
                  "tokens_per_s": round(train_tokens / rep.seconds, 1), "gflop_per_s": round(train_flops / 1e9, 2),
                  "ratio_to_gemm": round(train_flops / gemm, 3)},
        "gemm": {"rows": rows, "gflop_per_s": round(gemm / 1e9, 2)},
    }
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    return report


if __name__ == "__main__":
    main()

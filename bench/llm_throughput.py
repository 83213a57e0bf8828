"""Throughput of the LLM ranker's backbone at a profile's prompt lengths.

Measures, in one process and one precision:

* scoring and training leads/s (and tokens/s) through the real code paths
  (:func:`llm_ranker.trainer.predict`, :class:`llm_ranker.trainer.Trainer`) on
  real prompts of a small synthetic world;
* the share of padding tokens in training batches with length bucketing and
  without (random batches of the same draws), and in scoring batches;
* training leads/s with LoRA in every block and in the top k only
  (``llm.lora_layers``; default k = a quarter of the blocks, rounded up), on
  the same prompts in the same batches, epochs in alternation, and their
  ratio (goal: >= 2);
* achieved FLOP/s — 2 x (non-embedding parameters of the blocks that run:
  ``llm.readout_layer`` drops the ones above) x (real tokens) for a forward; for training, that plus the input-gradient backward through the
  blocks that carry LoRA (all of them: 4 x; with ``llm.lora_layers = k`` only
  k of n) and, under ``llm.train_backbone``, the weight gradients
  (:func:`train_flops`) — as a ratio to a plain ``torch.matmul`` of
  the model's own linear shapes, same dtype, same threads, measured in the
  same run. Attention FLOPs are not counted, so the ratio is conservative;
* where a training epoch spends its time (:func:`time_shares`): the backbone's
  matmuls, LoRA's, dropout's random masks, attention and the rest.

The report is printed (indented) and, unless ``--no-record``, also recorded as one
JSON line with machine info in ``results/bench/llm_throughput.jsonl`` (``bench/_record.py``).

Usage::

    .venv/bin/python bench/llm_throughput.py --profile standard --score-leads 64 --train-leads 16
    .venv/bin/python bench/llm_throughput.py --profile quick --lora-layers 1
    .venv/bin/python bench/llm_throughput.py --set llm.dtype=fp32 --set llm.threads=1 --out /tmp/t.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import record  # noqa: E402

from benchmark.contract import tiny_entry  # noqa: E402
from benchmark.profile import load_profile  # noqa: E402
from benchmark.runner import load_splits  # noqa: E402
from feature_store.typed import parse  # noqa: E402
from leadrank_api import torch_threads  # noqa: E402
from llm_ranker.backbones import backbone_dir, compute_dtype, fast_cpu_bf16, load_backbone  # noqa: E402
from llm_ranker.config import LLMParams  # noqa: E402
from llm_ranker.losses import LossTerm, answer_ce, pointwise_bce  # noqa: E402
from llm_ranker.model import LeadRanker  # noqa: E402
from llm_ranker.prompt import PromptBuilder, TokenBudget, hf_token_spans  # noqa: E402
from llm_ranker.sampler import BucketedOversampler, oversample, padding_share, sorted_batches  # noqa: E402
from llm_ranker.summarizer import make_summarizer  # noqa: E402
from llm_ranker.trainer import Trainer, predict  # noqa: E402


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


def prompts_ids(cfg: LLMParams, cache: Path, data_dir: Path, n: int):
    """Token ids of ``n`` real training prompts (a 3,000-lead synthetic world), the backbone build
    (a ranker adapts its backbone in place, so each ranker loads its own) and the loaded backbone."""
    from benchmark.contract import contract_profile

    _, splits = load_splits(tiny_entry("table1"), contract_profile(data_dir))
    train = splits.train.take(np.arange(min(n, len(splits.train))))
    parts = PromptBuilder(train.schema, make_summarizer(cfg.summarizer, cfg.summarize_min_words)).parts(train)
    path = backbone_dir(cfg, cache, corpus=[p.render() for p in parts])
    backbone = load_backbone(cfg, cache, path=path)
    budget = TokenBudget(hf_token_spans(backbone.tokenizer), cfg.max_length, cfg.dialogue_tokens, backbone.n_special)
    return path, backbone, backbone.tokenizer(budget.fit(parts))["input_ids"], train.y


def padding_shares(lengths: np.ndarray, labels: np.ndarray, cfg: LLMParams) -> dict[str, float]:
    """The same epoch of draws batched in random order vs by length buckets; scoring batches."""
    draws = oversample(labels, cfg.pos_rate, np.random.default_rng(0))
    random_batches = [draws[i:i + cfg.batch_size] for i in range(0, len(draws), cfg.batch_size)]
    bucketed = BucketedOversampler(cfg.batch_size, cfg.pos_rate, cfg.bucket_batches).batches(
        lengths, {"label": labels}, np.random.default_rng(0))
    return {"train_random": round(padding_share(random_batches, lengths), 4),
            "train_bucketed": round(padding_share(bucketed, lengths), 4),
            "score_sorted": round(padding_share(sorted_batches(lengths, cfg.score_batch_size), lengths), 4)}


def time_scoring(model: LeadRanker, ids: list[list[int]], pad_id: int, cfg: LLMParams, dtype) -> tuple[float, int]:
    """Seconds and real tokens to score ``ids`` as the pipeline does (LoRA merged), after a warm-up
    batch (and the compilation, with --compile)."""
    with model.merged():
        predict(model, ids[:cfg.score_batch_size], pad_id, cfg.score_batch_size, dtype)
        t0 = time.perf_counter()
        predict(model, ids, pad_id, cfg.score_batch_size, dtype)
        return time.perf_counter() - t0, int(sum(len(x) for x in ids))


def time_training(model: LeadRanker, ids: list[list[int]], labels: np.ndarray, pad_id: int, cfg: LLMParams,
                  dtype, warm_up: bool = True) -> tuple[float, int]:
    """Seconds and real tokens for one epoch of the real trainer over ``ids``, after a warm-up batch."""
    terms = [LossTerm("bce", cfg.alpha, pointwise_bce), LossTerm("ce", cfg.lambda_ce, answer_ce)]
    trainer = Trainer(cfg.model_copy(update={"pos_rate": 0.0}), terms, BucketedOversampler(cfg.batch_size, 0.0), seed=0, dtype=dtype)
    if warm_up:
        warm = slice(0, cfg.batch_size)
        trainer.fit(model, ids[warm], {"label": labels[warm]}, pad_id)
    report = trainer.fit(model, ids, {"label": labels}, pad_id)
    return report.seconds, int(sum(len(x) for x in ids))


def running_params(model: LeadRanker) -> int:
    """The backbone weights a forward multiplies by: its blocks as the ranker runs them (the blocks above
    ``llm.readout_layer`` are dropped) and the final norm; not the embeddings, the LM head (applied to
    one position) or LoRA's own matrices."""
    return sum(p.numel() for n, p in model.lm.get_base_model().named_parameters()
               if not any(k in n for k in ("embed", "lm_head", "lora_")))


def time_shares(model: LeadRanker, ids: list[list[int]], labels: np.ndarray, pad_id: int, cfg: LLMParams,
                dtype) -> dict[str, float]:
    """Where an epoch of training spends its time, from torch's profiler (self time of each operator on
    the calling thread, so shares of the profiled time, profiler overhead included): matmuls by the
    backbone's weights, LoRA's skinny matmuls (a dimension equal to ``llm.lora_rank``), the random masks
    of dropout, attention, and everything else (elementwise ops, norms, the optimizer, Python)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        time_training(model, ids, labels, pad_id, cfg, dtype, warm_up=False)
    seconds = dict.fromkeys(("matmul", "lora_matmul", "dropout_rng", "attention", "other"), 0.0)
    for e in prof.key_averages(group_by_input_shape=True):
        if e.key in ("aten::mm", "aten::addmm", "aten::bmm"):
            dims = {d for shape in e.input_shapes for d in shape}
            part = "lora_matmul" if cfg.lora_rank in dims else "matmul"
        elif e.key in ("aten::bernoulli_", "aten::bernoulli"):
            part = "dropout_rng"
        elif "scaled_dot_product" in e.key:
            part = "attention"
        else:
            part = "other"
        seconds[part] += e.self_cpu_time_total / 1e6
    total = sum(seconds.values())
    return {k: round(v / total, 3) for k, v in seconds.items()}


def train_flops(params: int, tokens: int, model: LeadRanker, cfg: LLMParams) -> float:
    """Matmul FLOPs of one training pass: the forward (2 x params x tokens), the input-gradient backward
    through the blocks above the frozen ones (2 x their share), and under ``llm.train_backbone`` the
    weight gradients too (2 x params x tokens). LoRA's own small matmuls are not counted."""
    blocks = model.lm.get_base_model().config.num_hidden_layers
    trainable = (blocks - model.frozen_blocks) / blocks
    return 2 * params * tokens * (1 + trainable + (1 if cfg.train_backbone else 0))


def time_lora_layers(path: Path, cfg: LLMParams, k: int, ids: list[list[int]], labels: np.ndarray, pad_id: int,
                     device: torch.device, dtype, cache: Path, rounds: int) -> dict:
    """Training leads/s with LoRA in every block and in the top ``k`` on the same prompts and batches
    (a fresh backbone and the same seed for each), and the ratio. The box may be shared, so the two
    train in alternation for ``rounds`` epochs each and the fastest epoch of each counts."""
    models = {}
    for name, layers in (("every", None), ("top_k", k)):
        run = cfg.model_copy(update={"lora_layers": layers})
        torch.manual_seed(0)
        models[name] = run, LeadRanker(load_backbone(run, cache, path=path), run).to(device)
    seconds: dict[str, list[float]] = {name: [] for name in models}
    for i in range(rounds):
        for name, (run, model) in models.items():
            seconds[name].append(time_training(model, ids, labels, pad_id, run, dtype, warm_up=i == 0)[0])
    best = {name: min(s) for name, s in seconds.items()}
    return {"k": k, "leads": len(ids), "epoch_s": {n: [round(x, 2) for x in s] for n, s in seconds.items()},
            "every_leads_per_s": round(len(ids) / best["every"], 3),
            "top_k_leads_per_s": round(len(ids) / best["top_k"], 3),
            "speedup": round(best["every"] / best["top_k"], 3), "goals": {"speedup": 2.0}}


def rates(leads: int, seconds: float, tokens: int, flops: float, gemm: float) -> dict[str, float]:
    return {"leads": leads, "leads_per_s": round(leads / seconds, 3), "tokens_per_s": round(tokens / seconds, 1),
            "gflop_per_s": round(flops / seconds / 1e9, 2), "ratio_to_gemm": round(flops / seconds / gemm, 3)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--score-leads", type=int, default=64)
    ap.add_argument("--train-leads", type=int, default=16)
    ap.add_argument("--padding-leads", type=int, default=1500, help="prompts used for the padding shares")
    ap.add_argument("--compile", action="store_true", help="torch.compile the decoder (dynamic shapes)")
    ap.add_argument("--lora-layers", type=int, metavar="K",
                    help="k of the top-k LoRA training figure (default: a quarter of the blocks, rounded up)")
    ap.add_argument("--lora-rounds", type=int, default=2, help="alternating epochs of each for the top-k figure")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--no-record", action="store_true", help="print only; append nothing to results/bench/")
    a = ap.parse_args(argv)
    if (a.lora_layers is not None and a.lora_layers < 1) or a.lora_rounds < 1:
        ap.error("--lora-layers and --lora-rounds must be at least 1")

    profile = load_profile(a.profile, a.overrides)
    cfg = parse(LLMParams, profile.config.get("llm"), section="llm")
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dtype = compute_dtype(cfg, device)
    report: dict = {"profile": profile.name, "backbone": cfg.backbone, "max_length": cfg.max_length,
                    "dtype": str(dtype).removeprefix("torch."), "device": str(device),
                    "cpu": platform.processor() or platform.machine(), "amx_bf16": fast_cpu_bf16(),
                    "threads": cfg.threads or torch.get_num_threads(), "compile": a.compile}
    with torch_threads(cfg.threads):
        t0 = time.perf_counter()
        path, backbone, ids, labels = prompts_ids(cfg, profile.cache_dir, profile.data_dir,
                                                  max(a.padding_leads, a.score_leads, a.train_leads))
        report["load_s"] = round(time.perf_counter() - t0, 1)
        lengths = np.array([len(x) for x in ids])
        report["prompt_tokens"] = {"mean": round(float(lengths.mean()), 1), "p50": int(np.median(lengths)),
                                   "max": int(lengths.max())}
        report["padding_share"] = padding_shares(lengths, labels, cfg)
        model = LeadRanker(backbone, cfg).to(device)
        params = report["non_embedding_params"] = running_params(model)
        if a.compile:
            causal_lm = model.lm.get_base_model()
            causal_lm.model = torch.compile(causal_lm.model, dynamic=True)

        rows = int(cfg.score_batch_size * lengths.mean())  # token rows of a typical scoring batch
        shapes = linear_shapes(backbone.model.config)
        gemm_before = gemm_flops_per_s(shapes, rows, dtype, device)
        score_s, score_tokens = time_scoring(model, ids[:a.score_leads], backbone.pad_id, cfg, dtype)
        train_s, train_tokens = time_training(model, ids[:a.train_leads], labels[:a.train_leads], backbone.pad_id,
                                              cfg, dtype)
        report["train_time_shares"] = time_shares(model, ids[:a.train_leads], labels[:a.train_leads],
                                                  backbone.pad_id, cfg, dtype)
        blocks = backbone.model.config.num_hidden_layers
        k = a.lora_layers if a.lora_layers is not None else math.ceil(blocks / 4)
        lora_layers = {"blocks": blocks} | time_lora_layers(
            path, cfg, k, ids[:a.train_leads], labels[:a.train_leads], backbone.pad_id, device, dtype,
            profile.cache_dir, a.lora_rounds)
        gemm_after = gemm_flops_per_s(shapes, rows, dtype, device)
    gemm = (gemm_before + gemm_after) / 2  # the box may be shared: average the two ends of the run
    report |= {"score": rates(a.score_leads, score_s, score_tokens, 2 * params * score_tokens, gemm),
               "train": rates(a.train_leads, train_s, train_tokens, train_flops(params, train_tokens, model, cfg), gemm),
               "lora_layers": lora_layers,
               "gemm": {"rows": rows, "gflop_per_s_before": round(gemm_before / 1e9, 2),
                        "gflop_per_s_after": round(gemm_after / 1e9, 2)}}
    report["overrides"] = a.overrides
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text + "\n")
    if not a.no_record:
        record("llm_throughput", report)
    return report


if __name__ == "__main__":
    main()

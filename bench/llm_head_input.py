"""Can the heads learn from the frozen states in the fine-tune's few steps? Raw vs standardized input.

Chooses ``llm.head_input`` and ``llm.probe_steps`` (and checks ``llm.lr_heads``) for a profile, on the
validation split, before any LoRA trains. The backbone runs once, as the profile builds it (its
``readout_layer`` and ``pooling``), over the LLM rows' training subsample and the class-balanced
validation sample of their diagnostics; a fresh pointwise head (the ranker's own ScalarHead) is then
trained alone on the training states by :mod:`llm_ranker.probe`'s loop, for each input (raw,
standardized) x steps x learning rate x seed, and scored by validation AUC. The test split is never read.

Writes ``<results>/ablations/head_input.md`` and ``head_input.json`` beside it.

Usage::

    .venv/bin/python bench/llm_head_input.py --profile standard --dataset benchmark
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import machine  # noqa: E402
from llm_readout_probe import add_sample_args, probe_samples, write_report  # noqa: E402

from llm_ranker.config import LLMParams  # noqa: E402
from llm_ranker.ranker import LLMRanker  # noqa: E402


def frozen_states(cfg: LLMParams, profile, train, valid, seed: int):
    """The ranker as the profile builds it (readout, pooling), untrained, and its pooled states of both samples."""
    import torch

    from leadrank_api import torch_threads
    from llm_ranker.model import truncate
    from llm_ranker.trainer import predict

    ranker = LLMRanker(cfg, profile.cache_dir, seed, terms=[], sampler=None).zero_shot(train.schema)
    if cfg.readout_layer is not None:  # zero_shot reads the whole backbone; the heads read block L
        truncate(ranker.model.lm.get_base_model(), cfg.readout_layer)
    with torch_threads(cfg.threads):
        states = [torch.as_tensor(predict(ranker.model, ranker.token_ids(s), ranker.backbone.pad_id,
                                          cfg.score_batch_size, ranker.dtype)["pooled"]) for s in (train, valid)]
    return ranker.model, states


def head_auc(model, cfg: LLMParams, train_x, train_y, valid_x, valid_y, head_input: str, steps: int, lr: float,
             seed: int) -> float:
    """Validation AUC of a fresh pointwise head trained alone for ``steps`` at ``lr`` (llm_ranker.probe's loop)."""
    import torch
    from sklearn.metrics import roc_auc_score

    from llm_ranker.losses import LossTerm, pointwise_bce
    from llm_ranker.model import ScalarHead
    from llm_ranker.probe import standardize, train_heads
    from llm_ranker.sampler import BucketedOversampler

    torch.manual_seed(seed)
    model.heads["pointwise"] = ScalarHead(train_x.shape[1], cfg.head_hidden, cfg.head_dropout)
    standardize(model, train_x if head_input == "standardized" else None)
    run = cfg.model_copy(update={"probe_steps": steps, "lr_heads": lr})
    train_heads(model, train_x, {"label": train_y}, run, [LossTerm("bce", cfg.alpha, pointwise_bce)],
                BucketedOversampler(cfg.batch_size, cfg.pos_rate), seed)
    model.heads.eval()
    with torch.no_grad():
        return round(float(roc_auc_score(valid_y, model.read(valid_x)["pointwise"].numpy())), 4)


def render(report: dict, command: str) -> str:
    from tabulate import tabulate

    rows = [[r["head_input"], r["steps"], r["lr"], r["auc_mean"], ", ".join(f"{a:.4f}" for a in r["auc"])]
            for r in report["grid"]]
    best = max(report["grid"], key=lambda r: r["auc_mean"])
    return (f"# Head input: what a head learns from the frozen states alone ({report['backbone']}, "
            f"{report['dataset']})\n\n"
            f"The untrained backbone as the profile builds it (readout after block {report['readout_layer']}, "
            f"pooling {report['pooling']}) reads {report['train_leads']} training leads ({report['train_positives']} "
            f"positives, the LLM rows' subsample) and {report['valid_leads']} class-balanced validation leads; a "
            f"fresh pointwise head is trained alone on the training states (llm_ranker.probe's loop, batches of "
            f"{report['batch_size']} at the profile's positive rate, dropout {report['head_dropout']}) and scored by "
            f"validation AUC, {len(report['seeds'])} seeds each. The test split is not read. The fine-tune itself "
            f"takes about {report['finetune_steps']} steps.\n\n"
            f"Pooled states over the training leads: largest |mean| of a dimension {report['stats']['max_abs_mean']:.2f}, "
            f"standard deviations {report['stats']['std_min']:.3f}-{report['stats']['std_max']:.3f}.\n\n"
            + tabulate(rows, headers=["head input", "steps", "lr", "valid AUC (mean)", "per seed"],
                       tablefmt="github", floatfmt=".4f")
            + f"\n\nHighest: {best['head_input']}, {best['steps']} steps, lr {best['lr']:g} ({best['auc_mean']:.4f}); "
            f"the best of {len(rows)} settings on one validation sample is biased upwards.\n\n"
            f"Regenerate: `{command}` ({report['seconds']:.0f} s on {report['cpu']}).\n")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sample_args(ap)
    ap.add_argument("--steps", default="125,500,2000", help="comma-separated probe steps")
    ap.add_argument("--lrs", default="0.002,0.01", help="comma-separated learning rates of the head")
    ap.add_argument("--seeds", default="0,1", help="seeds of the head's init and batches")
    a = ap.parse_args(argv)
    steps, lrs, seeds = ([t(x) for x in s.split(",")] for t, s in ((int, a.steps), (float, a.lrs), (int, a.seeds)))
    t0 = time.perf_counter()
    profile, cfg, train, valid = probe_samples(a, ap, None, 0)
    model, (train_x, valid_x) = frozen_states(cfg, profile, train, valid, 0)
    grid = []
    for head_input in ("raw", "standardized"):
        for n in steps:
            for lr in lrs:
                aucs = [head_auc(model, cfg, train_x, train.y, valid_x, valid.y, head_input, n, lr, s) for s in seeds]
                grid.append({"head_input": head_input, "steps": n, "lr": lr, "auc": aucs,
                             "auc_mean": round(float(np.mean(aucs)), 4)})
                print(grid[-1], flush=True)
    report = {"backbone": cfg.backbone, "dataset": a.dataset, "profile": profile.name, "seeds": seeds,
              "readout_layer": cfg.readout_layer, "pooling": cfg.pooling, "batch_size": cfg.batch_size,
              "head_dropout": cfg.head_dropout, "finetune_steps": -(-len(train) // cfg.batch_size) * cfg.epochs,
              "train_leads": len(train), "train_positives": int(train.y.sum()), "valid_leads": len(valid),
              "stats": {"max_abs_mean": round(float(train_x.mean(0).abs().max()), 3),
                        "std_min": round(float(train_x.std(0).min()), 4), "std_max": round(float(train_x.std(0).max()), 4)},
              "grid": grid, "seconds": round(time.perf_counter() - t0, 1), "cpu": machine()["cpu"]}
    command = f".venv/bin/python bench/llm_head_input.py --profile {a.profile} --dataset {a.dataset}"
    write_report(a, profile, "head_input", report, render(report, command))
    return report


if __name__ == "__main__":
    main()

"""Which state of a frozen pretrained backbone carries a lead's outcome? Linear probes per block and pooling.

Chooses ``llm.readout_layer`` and ``llm.pooling`` (what the LLM rows' heads read) for a pretrained
backbone before any fine-tune, on the validation split. The backbone runs once, untrained, over the
training subsample the LLM rows train on (``llm.train_max_leads``, or ``--train-leads``) and over the
class-balanced validation sample their diagnostics score (``llm.valid_max_leads``); after each block
L = 1..n the states go through the final norm (as the ranker's readout does) and are pooled two ways,
the last prompt token and the mean over the prompt's tokens. A standardised logistic regression per
(L, pooling, C) is fit on the training states and scored by AUC on the validation states; the table
holds each (L, pooling)'s best C. The test split is never read.

Writes ``<results>/ablations/readout_probe.md`` (the table, the choice, the command) and
``readout_probe.json`` beside it.

Usage::

    .venv/bin/python bench/llm_readout_probe.py --profile standard --dataset benchmark --train-leads 600
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _record import machine  # noqa: E402

from benchmark.profile import load_profile  # noqa: E402
from benchmark.runner import load_splits  # noqa: E402
from feature_store.files import atomic_write_text  # noqa: E402
from feature_store.typed import parse  # noqa: E402
from llm_ranker import diagnostics  # noqa: E402
from llm_ranker.config import LLMParams  # noqa: E402
from llm_ranker.ranker import LLMRanker, subsample  # noqa: E402

CS = (0.001, 0.01, 0.1, 1.0)  # inverse regularisation of the probes (standardised states)


def layer_states(ranker: LLMRanker, ids: list[list[int]], batch_size: int) -> dict[str, np.ndarray]:
    """(blocks, leads, hidden) arrays ``last`` and ``mean``: every block's output through the final norm."""
    import torch

    from llm_ranker.model import last_token_index, mean_over_tokens
    from llm_ranker.trainer import pad_batch

    lm = ranker.model.lm.get_base_model()
    norm = lm.get_decoder().norm
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = {"last": [None] * len(ids), "mean": [None] * len(ids)}
    with torch.no_grad():
        for start in range(0, len(ids), batch_size):
            rows = order[start:start + batch_size]
            x, mask = pad_batch([ids[i] for i in rows], ranker.backbone.pad_id)
            states = lm(input_ids=x, attention_mask=mask, output_hidden_states=True).hidden_states
            # hidden_states[0] is the embeddings; [n] already has the final norm applied
            blocks = [norm(s) for s in states[1:-1]] + [states[-1]]
            at = last_token_index(mask)
            for name, pool in (("last", lambda h: h[torch.arange(len(rows)), at]),
                               ("mean", lambda h: mean_over_tokens(h, mask))):
                pooled = torch.stack([pool(h) for h in blocks], 1).float().numpy()  # (batch, blocks, hidden)
                for j, i in enumerate(rows):
                    out[name][i] = pooled[j]
            print(f"  {min(start + batch_size, len(ids))}/{len(ids)} prompts", flush=True)
    return {name: np.stack(v, 1) for name, v in out.items()}


def probe_auc(train_x: np.ndarray, train_y: np.ndarray, valid_x: np.ndarray, valid_y: np.ndarray) -> dict:
    """The best validation AUC over ``CS`` of a standardised logistic regression, its C and its scores."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best = {"auc": -1.0, "C": None}
    for c in CS:
        fit = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000)).fit(train_x, train_y)
        auc = float(roc_auc_score(valid_y, fit.decision_function(valid_x)))
        if auc > best["auc"]:
            best = {"auc": round(auc, 4), "C": c, "scores": fit.decision_function(valid_x)}
    return best


def paired_gain(y: np.ndarray, chosen: np.ndarray, paper: np.ndarray) -> dict:
    """The chosen probe's validation AUC minus the paper readout's (last token, last block): the
    difference and its 95 % interval over 1,000 stratified bootstrap resamples of the same leads."""
    from benchmark.metrics import bootstrap

    auc = bootstrap(y, [chosen, paper], keys=("auc",))["auc"]
    diff = auc[0] - auc[1]
    return {"gain": round(float(np.mean(diff)), 4), "ci": [round(float(q), 4) for q in np.percentile(diff, [2.5, 97.5])]}


def render(report: dict, command: str) -> str:
    from tabulate import tabulate

    rows = [[r["layer"], r["last"]["auc"], r["mean"]["auc"]] for r in report["probes"]]
    pick, gain = report["choice"], report["choice"]["vs_paper_readout"]
    return (f"# Readout probe: which frozen state carries the outcome ({report['backbone']}, {report['dataset']})\n\n"
            f"A logistic regression on the untrained backbone's states after block L (final norm applied), at the "
            f"last prompt token or averaged over the prompt's tokens: fit on {report['train_leads']} training leads "
            f"({report['train_positives']} positives, the LLM rows' subsample), validation AUC on "
            f"{report['valid_leads']} class-balanced validation leads (best C of {list(CS)}). The test split is "
            f"not read.\n\n"
            + tabulate(rows, headers=["block L", "last token", "mean over tokens"], tablefmt="github", floatfmt=".4f")
            + f"\n\nHighest: block {pick['layer']}, {pick['pooling']} (validation AUC {pick['auc']:.4f}); against "
            f"the paper's readout (last token of the last block) {gain['gain']:+.4f} [{gain['ci'][0]:+.4f}, "
            f"{gain['ci'][1]:+.4f}] (paired bootstrap, same validation leads). The maximum of "
            f"{2 * len(rows)} probes on one validation sample is biased upwards and neighbouring blocks are not "
            f"told apart: the choice is a readout for the fine-tune, not a finding.\n\n"
            f"Regenerate: `{command}` ({report['seconds']:.0f} s on {report['cpu']}).\n")


def add_sample_args(ap: argparse.ArgumentParser) -> None:
    """The arguments every validation-split probe of the LLM rows takes."""
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--dataset", default="benchmark")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", default=None, help="results folder (default: results/<profile> or results)")


def probe_samples(a: argparse.Namespace, ap: argparse.ArgumentParser, train_leads: int | None, seed: int,
                  **llm_update):
    """The profile, its ``llm`` settings (with ``llm_update``), the LLM rows' training subsample and the
    class-balanced validation sample of their diagnostics. The test split is not read."""
    profile = load_profile(a.profile, a.overrides)
    entries = {e.name: e for e in profile.datasets}
    if a.dataset not in entries:
        ap.error(f"profile {a.profile} has no dataset {a.dataset!r} (it has {sorted(entries)})")
    cfg = parse(LLMParams, {**profile.config["llm"], **llm_update}, section="llm")
    _, splits = load_splits(entries[a.dataset], profile)
    train = subsample(splits.train, train_leads or cfg.train_max_leads, seed)
    valid = splits.valid.take(diagnostics.balanced_positions(splits.valid.y, cfg.valid_max_leads or 300, seed))
    return profile, cfg, train, valid


def results_dir(a: argparse.Namespace, profile) -> Path:
    """``--out``, or the profile's committed results folder (``results`` for quick, else ``results/<profile>``)."""
    return Path(a.out or ("results" if profile.name == "quick" else f"results/{profile.name}"))


def write_report(a: argparse.Namespace, profile, name: str, report: dict, text: str) -> None:
    """``<results>/ablations/<name>.json`` and ``.md``, atomically, and the text on stdout."""
    out = results_dir(a, profile) / "ablations"
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / f"{name}.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / f"{name}.md", text)
    print(text)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sample_args(ap)
    ap.add_argument("--train-leads", type=int, default=None, help="default: llm.train_max_leads")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    profile, cfg, train, valid = probe_samples(a, ap, a.train_leads, a.seed, readout_layer=None, pooling="last")
    if cfg.backbone == "tiny":
        ap.error("the tiny backbone is random-init: a probe of its untrained states says nothing (use a pretrained one)")
    ranker = LLMRanker(cfg, profile.cache_dir, a.seed, terms=[], sampler=None).zero_shot(train.schema)
    from leadrank_api import torch_threads

    with torch_threads(cfg.threads):
        states = {name: layer_states(ranker, ranker.token_ids(s), cfg.score_batch_size)
                  for name, s in (("train", train), ("valid", valid))}
    probes = [{"layer": layer + 1, **{pool: probe_auc(states["train"][pool][layer], train.y,
                                                      states["valid"][pool][layer], valid.y)
                                      for pool in ("last", "mean")}}
              for layer in range(states["train"]["last"].shape[0])]
    best = max(((p["layer"], pool, p[pool]["auc"]) for p in probes for pool in ("last", "mean")), key=lambda t: t[2])
    gain = paired_gain(valid.y, next(p for p in probes if p["layer"] == best[0])[best[1]]["scores"],
                       probes[-1]["last"]["scores"])
    for p in probes:
        for pool in ("last", "mean"):
            del p[pool]["scores"]
    report = {"backbone": cfg.backbone, "dataset": a.dataset, "profile": profile.name, "seed": a.seed,
              "train_leads": len(train), "train_positives": int(train.y.sum()), "valid_leads": len(valid),
              "probes": probes, "choice": {"layer": best[0], "pooling": best[1], "auc": best[2], "vs_paper_readout": gain},
              "seconds": round(time.perf_counter() - t0, 1), "cpu": machine()["cpu"]}
    command = (f".venv/bin/python bench/llm_readout_probe.py --profile {a.profile} --dataset {a.dataset}"
               + (f" --train-leads {a.train_leads}" if a.train_leads else "") + f" --seed {a.seed}")
    write_report(a, profile, "readout_probe", report, render(report, command))
    return report


if __name__ == "__main__":
    main()

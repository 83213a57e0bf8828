"""Top-k LoRA vs LoRA in every block: what does ``llm.lora_layers`` cost in AUC at equal training leads?

A profile with ``llm.lora_layers = k`` (standard: 8 of SmolLM2's 30 blocks) trains ~2.4× faster
on a CPU (bench/llm_throughput.py). This experiment checks what that costs in ranking quality.
It runs the registered variant ``asllr_ce_lora_all`` (``llm_ranker/variants.yaml``: asLLR + L_CE
with LoRA in every block, the paper's fine-tune) on the profile's Table 1 dataset into
``<results>/ablations/``, next to a copy of ``asllr_ce`` from ``<results>/runs/`` (the profile's
top-k), and writes ``<results>/ablations/lora_layers.md``: both rows' AUC, the paired AUC
difference (bootstrap CI over the same test leads) and its DeLong p-value, each row's training
speed, and whether both rows saw the same training leads in the same batches (equal exposure).
A finished variant run is kept (rerun to resume or to re-render).

    .venv/bin/python bench/lora_layers_auc.py [--profile standard] [--seed 0]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tabulate import tabulate

from _ablation import run_beside
from benchmark import significance, tables
from benchmark.cli import default_out
from benchmark.profile import load_profile
from benchmark.results import RunRecord, all_runs
from feature_store.files import atomic_write_text

TOP_K, ALL_BLOCKS = "asllr_ce", "asllr_ce_lora_all"


def report(out: Path, top_k: RunRecord, all_blocks: RunRecord, n_resamples: int, command: str) -> str:
    """The markdown of lora_layers.md for two finished runs of ``out`` on the same test leads."""
    y, _, (s_all, s_top) = significance.paired_scores(out, [all_blocks, top_k])
    delta = tables.paired(out, all_blocks, top_k, ("auc",), relative=False, n_resamples=n_resamples)["auc"]
    test = significance.delong_test(y, s_all, s_top)
    same_leads = _equal([r.dataset_info.get("train_ids_sha256") for r in (top_k, all_blocks)])
    same_batches = _equal([_exposure(r).get("batch_sequence_sha256") for r in (top_k, all_blocks)])
    rows = [[r.method, _blocks(r), tables.fmt(r.estimate("auc"), "auc"), _exposure(r).get("leads", "?"),
             r.info.get("trainable_params", "?"), r.info.get("train_leads_per_s", "?"),
             r.provenance.get("cpu", "?")] for r in (top_k, all_blocks)]
    head = ["method", "LoRA blocks", "AUC [95% CI]", "training leads", "trainable params",
            "training leads/s", "CPU of the run"]
    return (f"# Top-k LoRA vs LoRA in every block (dataset `{top_k.dataset}`, seed {top_k.seed})\n\n"
            f"Regenerate: `{command}`. Both rows are asLLR + L_CE; only `llm.lora_layers` differs.\n\n"
            + tabulate(rows, head, tablefmt="github") + "\n\n"
            f"- ΔAUC (every block − top-k) = {tables.fmt(delta, 'auc', signed=True)} (paired bootstrap over the "
            f"same {len(y):,} test leads, {n_resamples} resamples); DeLong p = {test.p:.3g}.\n"
            f"- Equal exposure: same training leads {_yes(same_leads)}, same batches in the same order "
            f"{_yes(same_batches)} (`train_ids_sha256`, `batch_sequence_sha256` of the result files).\n"
            "- Training leads/s comes from each run's own record: compare it only where both ran on the same CPU; "
            "bench/llm_throughput.py measures the speed-up within one run.\n")


def _exposure(r: RunRecord) -> dict:
    return r.info.get("train_exposure", {})


def _equal(hashes: list[str | None]) -> bool:
    """Both records carry the hash and it is the same (a missing hash proves nothing)."""
    return hashes[0] is not None and hashes[0] == hashes[1]


def _blocks(r: RunRecord) -> str:
    k = r.info.get("llm", {}).get("lora_layers")
    return "every block" if k is None else f"top {k}"


def _yes(flag: bool) -> str:
    return "yes" if flag else "**NO** (the comparison is not fair)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="standard")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    profile = load_profile(a.profile)
    if profile.config.get("llm", {}).get("lora_layers") is None:
        raise SystemExit(f"profile {a.profile} already puts LoRA in every block (llm.lora_layers unset): "
                         "nothing to compare")
    entry = next(d for d in profile.datasets if d.table == "table1")
    out = run_beside(profile, default_out(profile.name), entry, (TOP_K,), [ALL_BLOCKS], [a.seed])
    runs = {r.method: r for r in all_runs(out) if r.dataset == entry.name and r.seed == a.seed and r.status == "ok"}
    missing = [m for m in (TOP_K, ALL_BLOCKS) if m not in runs]
    if missing:
        raise SystemExit(f"no finished run of {missing} in {out}/runs/{entry.name}: see the .log files there")
    command = f".venv/bin/python bench/lora_layers_auc.py --profile {a.profile} --seed {a.seed}"
    text = report(out, runs[TOP_K], runs[ALL_BLOCKS], profile.eval.bootstrap, command)
    atomic_write_text(out / "lora_layers.md", text)
    print(text)


if __name__ == "__main__":
    main()

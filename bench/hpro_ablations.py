"""HPRO ablations: which preference tier carries the lift of asLLR + HPRO?

Each ablation retrains ``asllr_hpro`` on the profile's Table 2 dataset with one
override — a tier dropped, every margin set to 0, or label-only pairs — into
``<results>/ablations/<name>/``, and compares it with ``asllr_ce`` (asLLR w/o
HPRO) on the same test leads: the relative lift and its paired bootstrap CI,
exactly as Table 2's lift row. ``asllr_ce`` reads no ``hpro.*`` key, so every
ablation is compared with the same run: the one in ``<results>/runs/``, copied
into each ablation directory (that directory then renders its own Table 2).
The summary goes to ``<results>/ablations/hpro.md``.

    .venv/bin/python bench/hpro_ablations.py [--profile quick] [--only no_global,margins_0]
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from tabulate import tabulate

from benchmark import runner, tables
from benchmark.cli import default_out
from benchmark.profile import load_profile
from benchmark.results import all_runs, run_dir

ABLATIONS = {
    "no_global": ["hpro.tiers=[key_action,soft_signal]"],
    "no_key_action": ["hpro.tiers=[global,soft_signal]"],
    "no_soft_signal": ["hpro.tiers=[global,key_action]"],
    "margins_0": ["hpro.margin_scale=0"],
    "label_only": ["hpro.tiers=[label]"],
}
KEYS = ("auc", "p_at_1.0", "r_at_5.0")


def summary_row(name: str, overrides: list[str], out: Path, dataset: str, n_boot: int) -> list[str]:
    runs = {r.method: r for r in all_runs(out) if r.dataset == dataset and r.seed == 0 and r.status == "ok"}
    hpro, ce = runs["asllr_hpro"], runs["asllr_ce"]
    lift = tables.paired(out, hpro, ce, KEYS, relative=True, n_resamples=n_boot)
    return ([name, " ".join(overrides) or "(profile's tiers and margins)"]
            + [tables.fmt(hpro.estimate(k), k) for k in KEYS] + [tables.fmt(lift[k], "lift", signed=True) for k in KEYS])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--only", default="", help="comma-separated ablation names (default: all)")
    a = ap.parse_args()
    base = load_profile(a.profile)
    entry = next(d for d in base.datasets if d.table == "table2")
    results = default_out(base.name)
    n_boot = int(base.get("eval.bootstrap", 1000))
    reference = run_dir(results, entry.name, "asllr_ce")
    if not any(reference.glob("seed0.json")):
        raise SystemExit(f"{reference} has no finished run: run `leadrank run --profile {a.profile} "
                         f"--methods asllr_ce,asllr_hpro` first")
    rows = [summary_row("full", [], results, entry.name, n_boot)]
    for name, overrides in ABLATIONS.items():
        if a.only and name not in a.only.split(","):
            continue
        out = results / "ablations" / name
        shutil.copytree(reference, run_dir(out, entry.name, "asllr_ce"), dirs_exist_ok=True)
        runner.run(load_profile(a.profile, overrides), out, methods=["asllr_hpro"], datasets=[entry])
        tables.write_tables(out, with_plots=False)
        rows.append(summary_row(name, overrides, out, entry.name, n_boot))
    head = ["ablation", "overrides", *(f"HPRO {tables.HEAD[k]}" for k in KEYS),
            *(f"lift {tables.HEAD[k]}" for k in KEYS)]
    text = (f"# HPRO ablations ({a.profile} profile, dataset `{entry.name}`, seed 0)\n\n"
            f"Regenerate: `.venv/bin/python bench/hpro_ablations.py --profile {a.profile}`. Lift = relative lift "
            f"over asLLR w/o HPRO (`asllr_ce`) on the same test leads, paired bootstrap 95 % CI "
            f"({n_boot} resamples).\n\n" + tabulate(rows, head, tablefmt="github") + "\n")
    path = results / "ablations" / "hpro.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    print(text)


if __name__ == "__main__":
    main()

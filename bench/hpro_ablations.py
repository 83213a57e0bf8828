"""HPRO ablations: which preference tier carries the lift of asLLR + HPRO?

The ablations are registered variants of ``asllr_hpro`` (``llm_ranker/variants.yaml``:
``hpro_no_global``, ``hpro_no_key_action``, ``hpro_no_soft_signal``, ``hpro_margins_0``,
``hpro_label_only``), each fixing one ``hpro.*`` setting. This script runs them on the
profile's Table 2 dataset into ``<results>/ablations/``, next to copies of the
``asllr_ce`` (asLLR w/o HPRO) and ``asllr_hpro`` runs of ``<results>/runs/``, renders
that folder's tables, and writes ``<results>/ablations/hpro.md``: each row's figures and
its relative lift over ``asllr_ce`` on the same test leads (paired bootstrap), exactly as
Table 2's lift row, per seed; with several seeds (``--seeds 0,1,2``) the summary
gives the mean over seeds and a t-interval. Every row trains on the same batches
(equal exposure): only the loss differs. Finished runs are kept (rerun to resume).

    .venv/bin/python bench/hpro_ablations.py [--profile quick] [--seeds 0,1,2] [--only hpro_no_global]
"""

from __future__ import annotations

import argparse

from tabulate import tabulate

from _ablation import run_beside
from benchmark import registry, tables
from benchmark.cli import default_out
from benchmark.profile import load_profile
from benchmark.results import all_runs
from feature_store.files import atomic_write_text

KEYS = ("auc", "p_at_1.0", "r_at_5.0")
REFERENCE, FULL = "asllr_ce", "asllr_hpro"


def ablations() -> list[str]:
    """The registered variants of asllr_hpro that fix some of its settings."""
    full = registry.get(FULL)
    return [m.name for m in registry.rows("table2") if issubclass(m, full) and m.overrides]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--seeds", default="0", help="comma-separated seeds (default: 0)")
    ap.add_argument("--only", default="", help="comma-separated ablation names (default: all)")
    a = ap.parse_args()
    profile = load_profile(a.profile)
    seeds = [int(s) for s in a.seeds.split(",")]
    entry = next(d for d in profile.datasets if d.table == "table2")
    chosen = [n for n in ablations() if not a.only or n in a.only.split(",")]
    out = run_beside(profile, default_out(profile.name), entry, (REFERENCE, FULL), chosen, seeds)

    runs = {(r.method, r.seed): r for r in all_runs(out) if r.dataset == entry.name and r.status == "ok"}
    rows = []
    for name in [FULL, *ablations()]:
        done = [s for s in seeds if (name, s) in runs and (REFERENCE, s) in runs]
        if not done:
            continue
        lifts = [tables.paired(out, runs[name, s], runs[REFERENCE, s], KEYS, relative=True,
                               n_resamples=profile.eval.bootstrap) for s in done]
        rows.append([name, registry.get(name).overrides.get("hpro") or "(the profile's tiers and margins)",
                     len(done)]
                    + [_over_seeds([runs[name, s].estimate(k) for s in done], k) for k in KEYS]
                    + [_over_seeds([lift[k] for lift in lifts], "lift", signed=True) for k in KEYS])
    head = ["method", "fixes", "seeds", *(f"HPRO {tables.HEAD[k]}" for k in KEYS),
            *(f"lift {tables.HEAD[k]}" for k in KEYS)]
    text = (f"# HPRO ablations ({a.profile} profile, dataset `{entry.name}`, seeds {a.seeds})\n\n"
            f"Regenerate: `.venv/bin/python bench/hpro_ablations.py --profile {a.profile} --seeds {a.seeds}`. Each "
            f"row is a registered variant of `{FULL}` (`llm_ranker/variants.yaml`); every row trains on the same "
            f"batches as `{REFERENCE}` (equal exposure), only the loss differs. Lift = relative lift over asLLR w/o "
            f"HPRO (`{REFERENCE}`) on the same test leads. One seed: the value with its paired bootstrap 95 % CI "
            f"({profile.eval.bootstrap} resamples); several: the mean over seeds, CI as in the tables (the wider of the t-interval over seeds and the mean bootstrap CI).\n\n"
            + tabulate(rows, head, tablefmt="github") + "\n")
    atomic_write_text(out / "hpro.md", text)
    print(text)


def _over_seeds(estimates: list, key: str, signed: bool = False) -> str:
    """One seed: its estimate and CI; several: the mean over seeds with the tables' CI (tables.over_seeds)."""
    bounds = (-1.0, float("inf")) if key == "lift" else (0.0, 1.0)  # a relative lift cannot fall below -100 %
    one = estimates[0] if len(estimates) == 1 else tables.over_seeds(estimates, bounds)
    return tables.fmt(one, key, signed=signed)


if __name__ == "__main__":
    main()

"""Text-strength sweep: from which text effect on does reading the transcripts pay off?

The Table 1 world (``benchmark``) with its text effects scaled by ``text_scale`` (a dataset entry's
typed world parameter: each scale is a world of its own identity, with the same leads and only the
law of the label changed), at the quick profile's settings. Every scale runs as a Table 3 dataset,
so every row is compared with the table-only oracle on the same test leads: the two oracles,
logistic regression, DeepFM, DeepFM + h_text and asLLR (Base). Writes ``docs/text_strength.md``
(AUC per row and scale, and each text reader's Δ over the table-only oracle) and
``docs/text_strength.png``; the runs and their Table 3 go to ``--out``. Finished jobs are kept
(rerun to resume or to re-render).

    .venv/bin/python bench/text_strength.py [--leads 30000] [--scales 0,1,2,4] [--jobs 2]
"""

from __future__ import annotations

import argparse
import shlex
import sys
from collections import defaultdict
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from tabulate import tabulate

from benchmark import runner, tables
from benchmark.profile import DatasetEntry, load_profile
from benchmark.results import RunRecord, all_runs
from feature_store.files import atomic_path, atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
METHODS = ["oracle", "oracle_table", "logreg", "deepfm", "deepfm+h_text", "asllr_base"]
CEILING = "oracle_table"


def entries(scales: list[float], leads: int, seed: int) -> list[DatasetEntry]:
    return [DatasetEntry(name=f"text_scale{s:g}", table="table3", world="benchmark", leads=leads, seed=seed,
                         text_scale=s, curves=False) for s in scales]


def collect(out: Path, scales: list[float], n_boot: int) -> dict[str, dict[float, dict]]:
    """method -> text_scale -> {"auc": Estimate, "delta": Estimate vs the table-only oracle or None}."""
    runs: dict[tuple[str, str], list[RunRecord]] = defaultdict(list)
    for r in all_runs(out):
        runs[r.dataset, r.method].append(r)
    figures: dict[str, dict[float, dict]] = defaultdict(dict)
    for s in scales:
        dataset = f"text_scale{s:g}"
        for m in METHODS:
            cell = tables.aggregate(runs.get((dataset, m), []))
            if cell.status != "ok":
                continue
            ceiling = runs.get((dataset, CEILING), [])
            delta = None
            if m != CEILING and tables.aggregate(ceiling).status == "ok":
                delta = tables.paired_over_seeds(out, runs[dataset, m], ceiling, ("auc",), False, n_boot)["auc"]
            figures[m][s] = {"auc": cell.estimates["auc"], "delta": delta}
    return figures


def report(figures: dict[str, dict[float, dict]], scales: list[float], command: str, leads: int) -> str:
    labels = {row.method: row.label.replace(" *(not in paper)*", "") + (" + h_text" if row.embedding != "-" else "")
              for row in tables.table_rows("table3", set(METHODS))}
    head = ["row"] + [f"text_scale {s:g}" for s in scales]
    auc = [[labels[m]] + [tables.fmt(figures[m][s]["auc"], "auc") if s in figures[m] else "not run" for s in scales]
           for m in METHODS]
    delta = [[labels[m]] + [tables.fmt(figures[m][s]["delta"], "auc", signed=True)
                            if s in figures[m] and figures[m][s]["delta"] else "–" for s in scales]
             for m in METHODS if m != CEILING]
    return (
        "# Text strength: where a text reader starts to pay off\n\n"
        f"The Table 1 world (`benchmark`, {leads:,} leads, quick profile settings) with its text effects scaled by "
        "`text_scale` (0: the facts the customers state still appear in the transcripts but no longer move the label; "
        "1: the Table 1 world; 4: the text effects of the `textual` control, whose table effects are also halved). "
        "The scales share their leads; only the law of the label changes. Each scale is a Table 3 dataset: every "
        "row is scored on the same test leads and compared with the table-only oracle.\n\n"
        f"Regenerate: `{command}` (runs resume; the per-scale Table 3 is written beside the runs).\n\n"
        "![AUC by text_scale](text_strength.png)\n\n## AUC [95 % CI]\n\n"
        + tabulate(auc, head, tablefmt="github", disable_numparse=True)
        + "\n\n## Δ vs the table-only oracle [95 % CI] (paired bootstrap on the same test leads)\n\n"
        + tabulate(delta, head, tablefmt="github", disable_numparse=True)
        + "\n\nThe oracle's Δ is the most reading the transcripts can add. A table-only row (logistic regression, "
        "DeepFM) cannot pass 0 beyond its CI; a text reader (DeepFM + h_text, asLLR) pays off where its Δ's CI is "
        "above 0.\n")


def figure(figures: dict[str, dict[float, dict]], scales: list[float]) -> Figure:
    fig = Figure(figsize=(7, 4.5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for m in METHODS:
        xs = [s for s in scales if s in figures[m]]
        if not xs:
            continue
        e = [figures[m][s]["auc"] for s in xs]
        style = {"oracle": "k--", CEILING: "k:"}.get(m, "-o")
        ax.plot(xs, [x.value for x in e], style, ms=4, lw=1.3, label=m)
        if m not in ("oracle", CEILING):
            ax.fill_between(xs, [x.ci_low for x in e], [x.ci_high for x in e], alpha=0.12, lw=0)
    ax.set(xlabel="text_scale (text effects x this; 1 = the Table 1 world)", ylabel="test AUC",
           title="AUC by strength of the text signal", xticks=scales)
    ax.legend(fontsize=8, frameon=False, loc="upper left")
    return fig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--leads", type=int, default=30000, help="leads of each world (quick: 30,000)")
    ap.add_argument("--scales", default="0,1,2,4", help="comma-separated text_scale values")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "data" / "text_strength", help="where the runs go")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs", help="where text_strength.md and .png go")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="a quick-profile override, e.g. llm.train_max_leads=500")
    a = ap.parse_args()
    scales = [float(s) for s in a.scales.split(",")]
    profile = load_profile("quick", a.overrides)
    runner.run(profile, a.out, methods=METHODS, seeds=[a.seed], datasets=entries(scales, a.leads, a.seed),
               jobs=a.jobs)
    tables.write_tables(a.out, with_plots=False)
    figures = collect(a.out, scales, profile.eval.bootstrap)
    command = "python bench/text_strength.py " + shlex.join(sys.argv[1:])
    a.docs.mkdir(parents=True, exist_ok=True)
    atomic_write_text(a.docs / "text_strength.md", report(figures, scales, command.strip(), a.leads))
    with atomic_path(a.docs / "text_strength.png") as tmp:
        FigureCanvasAgg(figure(figures, scales)).print_png(tmp, metadata={"Software": None})
    print(f"wrote {a.docs / 'text_strength.md'} and {a.docs / 'text_strength.png'}")


if __name__ == "__main__":
    main()

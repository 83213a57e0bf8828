"""Matched-budget learning curves: given N labelled leads, which method ranks better?

A table compares methods at whatever training budget each one can afford; on a
CPU the LLM rows train on a few thousand leads while a CTR model reads every
lead. A curve point instead trains *every* selected method on the same N leads
(:meth:`feature_store.split.SplitSet.with_train_budget`: nested, stratified,
one fixed order per class, validation cut pro rata) and scores the same test
leads, so each column of ``curves.md`` is a fair comparison, and the columns
show how each method grows with data. Each point's results are an ordinary
results folder (``<curves>/n<size>/runs/...``) whose JSONs record ``n_train``,
``n_train_pos`` and ``train_ids_sha256``; rendering refuses a point whose methods
did not train on the same leads.

A method never runs past its own training cap (``Method.train_cap``, e.g.
``llm.train_max_leads``): there it would train on its own subsample, so the point
is recorded "n/a" instead. The oracles do not train: they are the horizontal
ceilings of the plot.

A size of 0 is the zero-shot point: no training lead, so only the methods that
need no label run (``Method.zero_shot``: the rules, the oracles, and the LLM rows,
whose untrained backbone answers by the QA rule); every other row is "n/a, needs
training leads". Small sizes keep at least ``MIN_TRAIN_POSITIVES`` positives, and
the table's note names the columns where that is more than their share.

Layout: ``<curves>/curves.md`` (AUC [95 % CI] per method and size, every dataset)
and ``<curves>/<dataset>/curves.png`` (AUC vs training leads, log x, CI bands).
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter
from tabulate import tabulate

from benchmark import runner
from benchmark.profile import Profile
from benchmark.results import RunRecord, all_runs
from benchmark.tables import aggregate, fmt, table_rows
from feature_store.errors import ConfigError, DataError
from feature_store.files import atomic_path, atomic_write_text
from feature_store.sampling import MIN_TRAIN_POSITIVES
from leadrank_api import Family

FOLDER = "curves"
MARKDOWN = "curves.md"


def point_dir(curves: Path, size: int | str) -> Path:
    """The results folder of one curve point: ``n1000``, ..., ``nall``."""
    return Path(curves) / f"n{size}"


def run_curves(profile: Profile, curves: Path, sizes: list[int | str] | None = None, **run_kw) -> list[RunRecord]:
    """Run every curve point (``run_kw``: :func:`benchmark.runner.run`'s methods, seeds, datasets, force,
    jobs, ...), then write ``curves.md`` and the plots. Finished points are skipped like any job."""
    sizes = sizes or profile.core.curves.train_sizes
    methods = run_kw.pop("methods", None)
    if methods is None and profile.core.curves.methods != "all":
        methods = list(profile.core.curves.methods)
    if run_kw.get("datasets") is None:
        run_kw["datasets"] = [d for d in profile.datasets if d.curves]
        if not run_kw["datasets"]:
            raise ConfigError("no dataset of the profile has a learning curve (each says curves: false)")
    records = []
    for size in sizes:
        n = runner.ALL_LEADS if size == "all" else int(size)
        records += runner.run(profile, point_dir(curves, size), methods=methods, train_size=n, **run_kw)
    if runner.main_process():
        write_curves(curves)
    return records


def _points(curves: Path) -> dict[str, list[RunRecord]]:
    """Records by dataset over every point folder (each record's ``dataset_info`` says its size)."""
    by_dataset: dict[str, list[RunRecord]] = defaultdict(list)
    for folder in sorted(Path(curves).glob("n*/")):
        if (folder / "runs").is_dir():
            for r in all_runs(folder):
                by_dataset[r.dataset].append(r)
    return by_dataset


def _size_of(r: RunRecord) -> int:
    return int(r.dataset_info["n_train"])


def check_same_leads(records: list[RunRecord]) -> dict[int, RunRecord]:
    """One record per training size; DataError when two methods at a size trained on different leads."""
    first: dict[int, RunRecord] = {}
    for r in sorted(records, key=lambda r: (r.method, r.seed)):
        n, sha = _size_of(r), r.dataset_info.get("train_ids_sha256")
        ref = first.setdefault(n, r)
        if sha != ref.dataset_info.get("train_ids_sha256"):
            raise DataError(f"curve point n_train={n:,} of '{r.dataset}': {r.method} and {ref.method} trained on "
                            "different leads (train_ids_sha256 differs)",
                            hint="rerun the point with --force; its folders mix runs of different settings")
    return first


def render(curves: Path) -> str:
    """``curves.md``: per dataset, AUC [95 % CI] per method (rows) and training size (columns)."""
    parts = ["# Learning curves: AUC by number of training leads", "",
             "Every method in a column trained on the same leads (nested, stratified subsamples of the training "
             "split, the same for every method; validation leads cut pro rata; train_ids_sha256 checked equal) and "
             "was scored on the same test leads. AUC with its 95 % CI (mean over seeds where ≥ 3 ran). "
             "\"–\": not run at that size; n/a: see the note.", ""]
    for dataset, records in sorted(_points(curves).items()):
        sizes = check_same_leads(records)
        table = records[0].table.split(",")[0]
        by_cell: dict[tuple[str, int], list[RunRecord]] = defaultdict(list)
        for r in records:
            by_cell[(r.method, _size_of(r))].append(r)
        rows, notes = [], defaultdict(lambda: defaultdict(list))  # reason -> row label -> sizes
        for row in table_rows(table, {r.method for r in records}):
            if not any(m == row.method for m, _ in by_cell):
                continue
            cells = [row.label]
            for n in sorted(sizes):
                cell = aggregate(by_cell[(row.method, n)]) if by_cell.get((row.method, n)) else None
                if cell is None:
                    cells.append("–")
                elif cell.status == "ok":
                    cells.append(fmt(cell.estimates["auc"], "auc"))
                else:
                    cells.append(cell.status)
                    notes[cell.reason][row.label].append(f"{n:,}")
            rows.append(cells)
        head = ["Method"] + [_column(n, sizes[n]) for n in sorted(sizes)]
        test = records[0]
        parts += [f"## {dataset} ({table.replace('table', 'Table ')})", "",
                  tabulate(rows, headers=head, tablefmt="github", disable_numparse=True), "",
                  f"- Columns: training leads (positives); test: {test.n_test:,} leads, {test.n_pos:,} positives, the "
                  "same for every cell.",
                  *_budget_notes(sizes),
                  *(f"- n/a, {reason}: " + "; ".join(f"{label} at {', '.join(sizes)}" for label, sizes in where.items())
                    + "." for reason, where in notes.items()),
                  f"- Plot: [{dataset}/curves.png]({quote(dataset)}/curves.png)", ""]
    return "\n".join(parts)


def _column(n: int, record: RunRecord) -> str:
    return "0 (zero-shot)" if n == 0 else f"{n:,} ({record.dataset_info['n_train_pos']:,} pos)"


def _budget_notes(sizes: dict[int, RunRecord]) -> list[str]:
    """What a zero-shot column holds, and which small columns hold more positives than their share (the
    draw's floor, :data:`feature_store.sampling.MIN_TRAIN_POSITIVES`); nothing for curves with neither."""
    notes = []
    if 0 in sizes:
        notes.append("- 0 (zero-shot): no training lead. The rules and oracles read no label and score as in every "
                     "column; each LLM row is its backbone untrained, scored by the QA rule (log P(\" Yes\") − "
                     "log P(\" No\") after the prompt; LoRA starts as the identity, so LLM rows on one backbone score "
                     "alike there); every other row is n/a.")
    lifted = []
    for n, r in sorted(sizes.items()):
        whole, kept = r.dataset_info.get("budget_of"), r.dataset_info["n_train_pos"]
        pro_rata = max(1, round(n * whole["n_train_pos"] / whole["n_train"])) if n and whole else kept
        if kept > pro_rata:
            lifted.append(f"{n:,} ({kept:,} positives, {pro_rata:,} pro rata)")
    if lifted:
        notes.append(f"- At least {MIN_TRAIN_POSITIVES} positives per column (no learner fits a class it saw once): "
                     f"{'; '.join(lifted)} — a higher positive share than the training split's.")
    return notes


def write_curves(curves: Path) -> list[Path]:
    """Write ``curves.md`` and one plot per dataset."""
    curves = Path(curves)
    atomic_write_text(curves / MARKDOWN, render(curves))
    written = [curves / MARKDOWN]
    for dataset, records in sorted(_points(curves).items()):
        path = curves / dataset / "curves.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp:
            FigureCanvasAgg(_figure(dataset, records)).print_png(tmp, metadata={"Software": None})
        written.append(path)
    return written


def check_curves(curves: Path) -> list[str]:
    """``[curves.md]`` when the committed file differs from what the point folders give, else []."""
    path = Path(curves) / MARKDOWN
    return [] if path.is_file() and path.read_text() == render(curves) else [str(path)]


def _figure(dataset: str, records: list[RunRecord]) -> Figure:
    """AUC vs training leads (log x) with CI bands, one line per method; the oracles as horizontal ceilings."""
    fig = Figure(figsize=(8, 5), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    table = records[0].table.split(",")[0]
    by_method: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_method[r.method].append(r)
    rows = [row for row in table_rows(table, set(by_method)) if row.method in by_method]
    trained = [row for row in rows if by_method[row.method][0].family != Family.ORACLE]
    cmap = colormaps["tab10" if len(trained) <= 10 else "tab20"]
    zero_x = _zero_position([_size_of(r) for r in records])
    for i, row in enumerate(rows):
        per_size: dict[int, list[RunRecord]] = defaultdict(list)
        for r in by_method[row.method]:
            per_size[_size_of(r)].append(r)
        points = [(n, aggregate(rs)) for n, rs in sorted(per_size.items())]
        points = [(n, c.estimates["auc"]) for n, c in points if c.status == "ok"]
        if not points:
            continue
        if row in trained:
            color, label = cmap(trained.index(row) % cmap.N), row.label.replace("*", "")
            line = [(n, e) for n, e in points if n > 0]
            if line:
                n, e = np.array([p[0] for p in line]), [p[1] for p in line]
                ax.plot(n, [x.value for x in e], "-o", ms=3, lw=1.2, color=color, label=label)
                ax.fill_between(n, [x.ci_low for x in e], [x.ci_high for x in e], color=color, alpha=0.12, lw=0)
            for e in (e for n, e in points if n == 0):  # apart from the line: no lead is not a point on a log axis
                ax.errorbar([zero_x], [e.value], yerr=[[e.value - e.ci_low], [e.ci_high - e.value]], fmt="D", ms=4,
                            capsize=2, lw=1.0, color=color, label=None if line else label)
        else:
            ax.axhline(points[-1][1].value, ls="--" if row.method == "oracle" else ":", color="black", lw=1.0,
                       label=f"{row.label.replace('*', '')} (ceiling)")
    ax.set(xscale="log", xlabel="training leads (log scale; the same leads for every method)", ylabel="test AUC",
           title=f"{dataset}: AUC by training budget")
    if zero_x is not None:  # no tick left of the separator: the zero-shot points have no x of their own
        ax.axvline(zero_x * 1.7, color="grey", lw=0.6, ls=":")
        sizes = {_size_of(r) for r in records}
        ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if x > zero_x * 1.7 else ""))
        ax.xaxis.set_minor_formatter(FuncFormatter(lambda x, _: f"{x:,.0f}" if round(x) in sizes - {0} else ""))
        ax.text(zero_x, 0.02, "n = 0\n(zero-shot)", transform=ax.get_xaxis_transform(), ha="center", fontsize=7)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return fig


def _zero_position(sizes: list[int]) -> float | None:
    """Where the zero-shot points sit on the log x axis: a third of the smallest budget, left of a dotted
    separator (None when the curve has no n = 0 point)."""
    if 0 not in sizes:
        return None
    return min((n for n in sizes if n > 0), default=3) / 3

"""Plots per dataset, rendered from the per-lead score files only (like the tables).

``<out>/plots/<dataset>/``:

* ``roc.png`` — ROC curves (scikit-learn's ``roc_curve``), AUC in the legend.
* ``gains.png`` — cumulative gains (share of conversions among the top x % of
  leads) and lift (that share divided by x).
* ``capacity.png`` — the sales-team view of the papers' A/B test: if the team can
  call only the top K % of leads, the share of all conversions it reaches
  (= R@K) and the hit rate of its calls (= P@K), on a log axis of K, with the
  table's K values marked.
* ``calibration.png`` — reliability diagram with the expected calibration error
  (ECE) per method, for methods whose scores are probabilities: scores in
  [0, 1] from a non-rule method (logistic models, sigmoid heads, ``p_true``).
  Rule-based rankers and scores outside [0, 1] are ranked scores; they are
  listed as not shown rather than pushed through a fitted rank→probability
  map, which would measure the map, not the method.

Gains and capacity curves use the tie rule of ``benchmark.metrics`` (a tie group
cut by K is credited pro rata), so a curve read at a table's K gives the table's
figure. Each method contributes its lowest seed. Figures are drawn on
matplotlib's Agg canvas with fixed sizes and no timestamps; the table check
compares only Markdown and CSV, never these PNGs.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter
from sklearn.metrics import roc_curve

from benchmark.metrics import Ranking, cut_weight, point
from benchmark.results import RunRecord, all_runs
from benchmark.significance import paired_scores
from feature_store.files import atomic_path
from leadrank_api import Family

PLOTS = {"roc": "ROC", "gains": "gains & lift", "capacity": "capacity", "calibration": "calibration"}
TABLE_K = (0.1, 1.0, 5.0)  # the K of the tables' P@K / R@K columns
N_BINS = 10  # reliability-diagram bins (equal counts)


@dataclass
class Curve:
    """One method's test scores on a dataset, with what the plots need."""

    method: str
    family: str
    scores: np.ndarray
    auc: float
    color: object = None
    style: str = "-"


def plot_dir(out: Path, dataset: str) -> Path:
    return Path(out) / "plots" / dataset


def links(dataset: str) -> str:
    """The Markdown line under a dataset's table (paths relative to the results folder)."""
    return "Plots: " + " · ".join(f"[{title}](plots/{quote(dataset)}/{name}.png)" for name, title in PLOTS.items())


def capture_curve(y: np.ndarray, scores: np.ndarray, weight: np.ndarray | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """(leads called, conversions captured) at the end of each tie group, from (0, 0), in sampling
    weight (= leads of the test split; unit weights when the whole split was scored).

    The curve is linear between these points, which is the pro-rata tie rule of
    ``benchmark.metrics``: ``np.interp(k, *capture_curve(y, s, w))`` is the (weighted) number of
    conversions in the top k."""
    w = np.ones(len(y)) if weight is None else np.asarray(weight, dtype=np.float64)
    called, captured = Ranking(scores, y).grouped(w[None, :])
    return np.r_[0.0, np.cumsum(called[0])], np.r_[0.0, np.cumsum(captured[0])]


def reliability(y: np.ndarray, p: np.ndarray, n_bins: int = N_BINS, weight: np.ndarray | None = None
                ) -> tuple[np.ndarray, np.ndarray, float]:
    """Mean predicted and observed rate in ``n_bins`` equal-count bins, and the ECE over them.

    Equal counts (not equal widths) because conversion probabilities crowd near 0:
    equal-width bins would put almost every lead into the first one. ECE =
    Σ_b n_b / N · |observed_b − predicted_b|. (scikit-learn's ``calibration_curve``
    does not return the bin sizes the ECE needs.) With sampling weights (a case-control
    sample) the means and the bin sizes are weighted, so they describe the whole test split."""
    w = np.ones(len(p)) if weight is None else np.asarray(weight, dtype=np.float64)
    bins = np.array_split(np.argsort(p, kind="stable"), min(n_bins, len(p)))
    predicted = np.array([np.average(p[b], weights=w[b]) for b in bins])
    observed = np.array([np.average(np.asarray(y)[b], weights=w[b]) for b in bins])
    sizes = np.array([w[b].sum() for b in bins])
    return predicted, observed, float(np.sum(sizes * np.abs(observed - predicted)) / sizes.sum())


def is_probability(curve: Curve) -> bool:
    return curve.family != Family.RULE and bool(np.all((curve.scores >= 0) & (curve.scores <= 1)))


def write_plots(out: Path) -> list[Path]:
    """Render every plot of every dataset that has finished runs; returns the files written."""
    by_dataset: dict[str, dict[str, list[RunRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in all_runs(out):
        if r.status == "ok":
            by_dataset[r.dataset][r.method].append(r)
    written = []
    for dataset, methods in sorted(by_dataset.items()):
        runs = [min(recs, key=lambda r: r.seed) for _, recs in sorted(methods.items())]
        y, w, scores = paired_scores(out, runs)
        curves = sorted((Curve(r.method, r.family, s, point("auc", y, s)) for r, s in zip(runs, scores)),
                        key=lambda c: (-c.auc, c.method))
        _style(curves)
        folder = plot_dir(out, dataset)
        folder.mkdir(parents=True, exist_ok=True)
        title = f"{dataset}: N = {len(y):,} test leads, {int(y.sum()):,} conversions"
        if np.any(w != 1.0):
            title = (f"{dataset}: case-control sample of {len(y):,} test leads ({int(y.sum()):,} conversions), "
                     f"weighted to the {w.sum():,.0f} leads of the test split")
        for name in PLOTS:
            fig = _DRAW[name](y, w, curves)
            fig.suptitle(title, fontsize=10)
            path = folder / f"{name}.png"
            with atomic_path(path) as tmp:
                FigureCanvasAgg(fig).print_png(tmp, metadata={"Software": None})
            written.append(path)
    return written


def _style(curves: list[Curve]) -> None:
    """A fixed color per method (by AUC rank); the oracle is a dashed black ceiling."""
    others = [c for c in curves if c.method != "oracle"]
    cmap = colormaps["tab10" if len(others) <= 10 else "tab20"]
    for i, c in enumerate(others):
        c.color = cmap(i % cmap.N)
    for c in curves:
        if c.method == "oracle":
            c.color, c.style = "black", "--"


def _legend(ax, **kw) -> None:
    ax.legend(fontsize=7, frameon=False, **kw)


def _roc(y: np.ndarray, w: np.ndarray, curves: list[Curve]) -> Figure:
    fig = Figure(figsize=(5.5, 5.2), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    for c in curves:
        fpr, tpr, _ = roc_curve(y, c.scores, sample_weight=w)
        ax.plot(fpr, tpr, c.style, color=c.color, lw=1.2, label=f"{c.method} (AUC {c.auc:.4f})")
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=0.8, label="random")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", xlim=(0, 1), ylim=(0, 1), title="ROC")
    _legend(ax, loc="lower right")
    return fig


def _gains(y: np.ndarray, w: np.ndarray, curves: list[Curve]) -> Figure:
    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    gains, lift = fig.subplots(1, 2)
    n, n_pos = w.sum(), (w * y).sum()
    share = np.geomspace(max(1.0 / n, 1e-3), 1.0, 200)
    for c in curves:
        called, captured = capture_curve(y, c.scores, w)
        gains.plot(called / n, captured / n_pos, c.style, color=c.color, lw=1.2, label=c.method)
        lift.plot(share, np.interp(share * n, called, captured) / n_pos / share, c.style, color=c.color, lw=1.2,
                  label=c.method)
    gains.plot([0, 1], [0, 1], ":", color="grey", lw=0.8, label="random")
    gains.plot([0, n_pos / n, 1], [0, 1, 1], ":", color="darkgrey", lw=0.8, label="perfect")
    lift.axhline(1.0, ls=":", color="grey", lw=0.8, label="random")
    gains.set(xlabel="leads called (top x %)", ylabel="conversions captured", xlim=(0, 1), ylim=(0, 1.01),
              title="Cumulative gains")
    lift.set(xscale="log", xlabel="leads called (top x %, log scale)", ylabel="lift over random", title="Lift")
    gains.xaxis.set_major_formatter(PercentFormatter(1.0))
    gains.yaxis.set_major_formatter(PercentFormatter(1.0))
    lift.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))
    _legend(gains, loc="lower right")
    return fig


def _capacity(y: np.ndarray, w: np.ndarray, curves: list[Curve]) -> Figure:
    fig = Figure(figsize=(10, 4.5), dpi=100, layout="constrained")
    reach, hit = fig.subplots(1, 2)
    n, n_pos = w.sum(), (w * y).sum()
    pct = np.geomspace(TABLE_K[0] / 2, 100.0, 200)
    marks = np.array(TABLE_K)
    for c in curves:
        called, captured = capture_curve(y, c.scores, w)
        for ks, kw in ((pct, dict(ls=c.style, lw=1.2)), (marks, dict(ls="", marker="o", ms=4))):
            k = np.array([cut_weight(n, p) for p in ks])
            got = np.interp(k, called, captured)
            reach.plot(ks, got / n_pos, color=c.color, label=c.method if ks is pct else None, **kw)
            hit.plot(ks, got / k, color=c.color, **kw)
    reach.plot(pct, pct / 100, ":", color="grey", lw=0.8, label="random")
    hit.axhline(n_pos / n, ls=":", color="grey", lw=0.8, label="random (base rate)")
    for ax in (reach, hit):
        ax.set(xscale="log", xlabel="capacity: top K % of leads called (log scale; dots: the tables' K)")
        for k in TABLE_K:
            ax.axvline(k, color="lightgrey", lw=0.6, zorder=0)
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}%"))
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    reach.set(ylabel="share of all conversions reached (R@K)", ylim=(0, 1.01), title="Conversions reached at capacity")
    hit.set(ylabel="conversions per call (P@K)", ylim=(0, None), title="Hit rate of the calls")
    _legend(reach, loc="upper left")
    _legend(hit, loc="upper right")
    return fig


def _calibration(y: np.ndarray, w: np.ndarray, curves: list[Curve]) -> Figure:
    fig = Figure(figsize=(5.8, 6.0), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    shown = [c for c in curves if is_probability(c)]
    top = 0.0
    for c in shown:
        predicted, observed, ece = reliability(y, c.scores, weight=w)
        ax.plot(predicted, observed, c.style, marker="o", ms=3, color=c.color, lw=1.2,
                label=f"{c.method} (ECE {ece:.4f})")
        top = max(top, predicted.max(), observed.max())
    top = top * 1.05 or 1.0
    ax.plot([0, top], [0, top], ":", color="grey", lw=0.8, label="perfectly calibrated")
    ax.set(xlim=(0, top), ylim=(0, top), xlabel="mean predicted probability (per bin)",
           ylabel="observed conversion rate (per bin)", title="Reliability diagram")
    _legend(ax, loc="upper left")
    skipped = [c.method for c in curves if not is_probability(c)]
    note = (f"{N_BINS} equal-count bins per method; ECE = Σ n_b/N · |observed − predicted|.\n"
            "Shown: scores that are probabilities in [0, 1]; no recalibration applied.")
    if skipped:
        note += f"\nNot shown (rule-based or outside [0, 1]: ranked scores, not probabilities): {', '.join(skipped)}."
    fig.text(0.01, 0.005, note, fontsize=7, va="bottom")
    fig.get_layout_engine().set(rect=(0, 0.08, 1, 0.92))
    return fig


_DRAW = {"roc": _roc, "gains": _gains, "capacity": _capacity, "calibration": _calibration}

"""Table 1 and Table 2, rendered from result files only.

Every paper row is always shown: with numbers when a run exists, "not run"
when none does, "n/a" (with the reason in a footnote) when the data could not
serve the method. Methods outside the papers that belong to a table (logreg,
lightgbm, plugins) follow, marked "not in paper"; the oracle closes the table.
Derived rows — the gain of ``+h_text`` and the relative lift of HPRO — come from
a paired bootstrap over the same test leads, read from the per-lead score files.
Every row is also tested against its table's reference row (``benchmark.significance``):
a † marks p < 0.05 and ``significance.md`` lists every p-value. Plots
(``benchmark.plots``) are linked under each dataset's table.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

from benchmark import plots, significance
from benchmark.metrics import METRIC_KEYS, Estimate, bootstrap, interval, point
from benchmark.results import RunRecord, all_runs
from feature_store.validate import data_gaps

CTR = (("W&D", "wdl"), ("DeepFM", "deepfm"), ("xDeepFM", "xdeepfm"), ("DCN", "dcn"), ("DCN-M", "dcnm"),
       ("AutoInt", "autoint"))


@dataclass(frozen=True)
class Row:
    label: str
    method: str
    embedding: str = "-"
    baseline: str | None = None  # the row this one is compared with (gain / lift)


TABLE1 = ([Row(lbl, m) for lbl, m in CTR] + [Row(lbl, f"{m}+h_text", "+h_text", baseline=m) for lbl, m in CTR]
          + [Row("asLLR (Base)", "asllr_base"), Row("asLLR + L_CE", "asllr_ce"),
             Row("asLLR + HPRO (Full)", "asllr_hpro")])
TABLE2 = [Row("Funnel+Recency", "funnel_recency"), Row("Funnel+CTR (DeepFM, two-stage)", "funnel_ctr_two_stage"),
          Row("Funnel+CTR (DeepFM, direct)", "funnel_ctr_direct"), Row("asLLR (w/o HPRO)", "asllr_ce"),
          Row("asLLR (w/ HPRO)", "asllr_hpro", baseline="asllr_ce")]
LAYOUT = {"table1": (TABLE1, ("auc",)), "table2": (TABLE2, METRIC_KEYS)}
TITLES = {"table1": "Table 1", "table2": "Table 2"}
# The row each table's claim is about: (candidate methods, how to name them); see benchmark.significance.
REFERENCE = {"table1": (tuple(m for _, m in CTR), "the best CTR model without h_text"),
             "table2": (("asllr_ce",), "asLLR (w/o HPRO)")}
HEAD = {"auc": "AUC", "p_at_0.1": "P@0.1%", "p_at_1.0": "P@1.0%", "r_at_5.0": "R@5.0%"}


@dataclass
class Cell:
    """One method's figures on one dataset, aggregated over seeds."""

    status: str  # ok | not run | n/a
    estimates: dict[str, Estimate]
    note: str = ""
    reason: str = ""


def aggregate(records: list[RunRecord]) -> Cell:
    """Mean and a t-interval over seeds when there are >= 3; else the lowest seed's bootstrap CI."""
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: r.seed)
    if not ok:
        return Cell("n/a", {}, reason=records[0].reason) if records else Cell("not run", {})
    if len(ok) < 3:
        note = "" if len(ok) == 1 else f"seed {ok[0].seed} of {len(ok)} (<3 seeds: bootstrap CI)"
        return Cell("ok", {k: ok[0].estimate(k) for k in ok[0].metrics}, note=note)
    est = {}
    for k in ok[0].metrics:
        v = np.array([r.metrics[k]["value"] for r in ok])
        half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
        est[k] = Estimate(float(v.mean()), float(v.mean() - half), float(v.mean() + half))
    return Cell("ok", est, note=f"mean of {len(ok)} seeds, t-interval over seeds")


def paired(out: Path, a: RunRecord, b: RunRecord, keys: tuple[str, ...], relative: bool,
           n_resamples: int) -> dict[str, Estimate]:
    """a − b (or (a − b) / b) per metric, with a paired bootstrap CI over the same test leads."""
    y, (sa, sb) = significance.paired_scores(out, [a, b])
    boots = bootstrap(y, [sa, sb], keys, n_resamples, seed=0)
    res = {}
    for k in keys:
        va, vb = point(k, y, sa), point(k, y, sb)
        da, db = boots[k]
        if relative:
            with np.errstate(divide="ignore", invalid="ignore"):
                res[k] = interval((da - db) / db, (va - vb) / vb if vb else float("nan"))
        else:
            res[k] = interval(da - db, va - vb)
    return res


def fmt(e: Estimate | None, key: str, signed: bool = False) -> str:
    """'value [low, high]'; AUC as a fraction, other metrics (and lifts) in percent.
    A bound that is undefined (a lift whose base resampled to 0) prints as 'undef.'."""
    if e is None or not np.isfinite(e.value):
        return "–"
    scale, unit, digits = (1, "", 4) if key == "auc" else (100, "%", 2)

    def num(x: float) -> str:
        return f"{scale * x:{'+' if signed else ''}.{digits}f}" if np.isfinite(x) else "undef."
    return f"{num(e.value)}{unit} [{num(e.ci_low)}, {num(e.ci_high)}]"


def render_dataset(out: Path, table: str, dataset: str, records: list[RunRecord]) -> tuple[str, pd.DataFrame, str]:
    """The dataset's table (Markdown and CSV frame) and its section of significance.md."""
    rows, keys = LAYOUT[table]
    by_method: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_method[r.method].append(r)
    n_boot = int(next((r.config.get("settings", {}).get("eval", {}).get("bootstrap", 1000) for r in records), 1000))
    all_rows = list(rows)
    paper_methods = {r.method for r in rows}
    extra = sorted(m for m in by_method if m not in paper_methods and m != "oracle")
    all_rows += [Row(f"{_nice(m)} *(not in paper)*", m) for m in extra]
    if "oracle" in by_method:
        all_rows.append(Row("Oracle (p_true)", "oracle"))

    md_rows, csv_rows, notes, na = [], [], [], []
    cells = {row.method: aggregate(by_method.get(row.method, [])) for row in all_rows}
    ok = [row.method for row in all_rows if cells[row.method].status == "ok"]
    tests = significance.compare(out, {m: _first(by_method[m]) for m in ok},
                                 {m: cells[m].estimates["auc"].value for m in ok}, *REFERENCE[table], keys, n_boot)
    for row in all_rows:
        cell = cells[row.method]
        line = [row.label] + ([row.embedding] if table == "table1" else [])
        rec = {"row": row.label, "method": row.method, "status": cell.status}
        if table == "table1":
            rec["embedding"] = row.embedding
        if cell.status == "ok":
            line += [significance.mark(fmt(cell.estimates.get(k), k), tests.p(row.method, k)) for k in keys]
            for k in keys:
                e = cell.estimates.get(k)
                rec.update({k: e.value, f"{k}_ci_low": e.ci_low, f"{k}_ci_high": e.ci_high} if e else {})
                rec[f"{k}_p"] = tests.p(row.method, k)
        else:
            text = "not run" if cell.status == "not run" else "n/a"
            line += [text] + ["–"] * (len(keys) - 1)
            if cell.status == "n/a":
                na.append(f"{row.label}: {cell.reason}")
        if cell.note:
            notes.append(f"{row.label}: {cell.note}")
        if table == "table1":
            gain = None
            if row.baseline and cell.status == "ok" and cells.get(row.baseline, Cell("", {})).status == "ok":
                gain = paired(out, _first(by_method[row.method]), _first(by_method[row.baseline]), ("auc",), False,
                              n_boot)["auc"]
                rec.update({"gain": gain.value, "gain_ci_low": gain.ci_low, "gain_ci_high": gain.ci_high})
            line.append(fmt(gain, "auc", signed=True) if row.baseline else "-")
        md_rows.append(line)
        csv_rows.append(rec)
        if table == "table2" and row.baseline:
            lift_line, lift_rec = _lift_row(out, by_method, cells, row, keys, n_boot)
            md_rows.append(lift_line)
            csv_rows.append(lift_rec)

    headers = (["Model", "Embedding"] if table == "table1" else ["Method"]) + \
              [f"{HEAD[k]} [95% CI]" for k in keys] + (["Gain ΔAUC [95% CI]"] if table == "table1" else [])
    md = tabulate(md_rows, headers=headers, tablefmt="github", disable_numparse=True)
    if ok:
        md += "\n\n" + plots.links(dataset)
    labels = {row.method: row.label + (f" ({row.embedding})" if row.embedding != "-" else "") for row in all_rows}
    sig = significance.section(tests, [(labels[r.method], r.method, cells[r.method].status) for r in all_rows], keys,
                               HEAD, n_boot)
    notes = ([significance.footnote(tests, labels)] if ok else []) + notes
    return md + "\n\n" + _footnotes(table, records, notes, na), pd.DataFrame(csv_rows), sig


def _lift_row(out, by_method, cells, row, keys, n_boot):
    label = "Relative lift (w/ vs w/o HPRO)"
    rec = {"row": label, "method": f"{row.method} vs {row.baseline}", "status": "not run"}
    if cells[row.method].status == "ok" and cells[row.baseline].status == "ok":
        lift = paired(out, _first(by_method[row.method]), _first(by_method[row.baseline]), keys, True, n_boot)
        rec["status"] = "ok"
        for k in keys:
            rec.update({k: lift[k].value, f"{k}_ci_low": lift[k].ci_low, f"{k}_ci_high": lift[k].ci_high})
        return [label] + [fmt(lift[k], "lift", signed=True) for k in keys], rec
    return [label, "not run"] + ["–"] * (len(keys) - 1), rec


def _first(records: list[RunRecord]) -> RunRecord:
    return min((r for r in records if r.status == "ok"), key=lambda r: r.seed)


def _nice(method: str) -> str:
    return {"logreg": "Logistic regression", "lightgbm": "LightGBM"}.get(method, method)


def _footnotes(table: str, records: list[RunRecord], notes: list[str], na: list[str]) -> str:
    ok = [r for r in records if r.status == "ok"]
    lines = []
    if ok:
        r = ok[0]
        info = r.dataset_info
        lines.append(f"Test leads: N = {r.n_test:,}, positives = {r.n_pos:,} ({100 * r.n_pos / max(r.n_test, 1):.2f} %); "
                     f"{info.get('split', 'temporal')} split; every row is scored on these same leads.")
    lines.append("95 % CIs: stratified bootstrap over test leads (or a t-interval over seeds where ≥ 3 seeds ran). "
                 "P@K / R@K: top k = ceil(K % · N); ties at the cut get pro-rata credit "
                 "(the expected value under a random tie-break).")
    if table == "table1":
        lines.append("Gain: AUC(+h_text) − AUC(same model without), paired bootstrap on the same test leads.")
    else:
        lines.append("Relative lift: (w/ − w/o) / w/o per column, paired bootstrap on the same test leads.")
    providers = sorted({str(r.info.get("h_text_provider")) for r in ok if r.info.get("h_text_provider")})
    if providers:
        lines.append("h_text provider: " + ", ".join(providers) + ".")
    if any(r.method == "oracle" for r in ok):
        lines.append("Oracle: scores = the true conversion probability p_true of the synthetic world; "
                     "the ceiling no honest model can pass beyond its CI.")
    info = records[0].dataset_info if records else {}
    gaps = data_gaps(info.get("has_text", True), info.get("has_stage", True), info.get("has_outcomes", True),
                     llm=any(r.family == "llm" for r in ok), hpro=any("hpro" in r.method for r in ok))
    if gaps:
        lines.append("Data: " + "; ".join(gaps) + ".")
    lines.append("\"not run\": no result file for this row (the method is not registered yet or was not selected).")
    lines += [f"n/a — {x}" for x in na] + notes
    return "\n".join(f"- {x}" for x in lines) + "\n"


def render_all(out: Path) -> dict[str, str]:
    """File name -> text of every rendered file (table1.md/.csv, table2.md/.csv, significance.md)
    from the result files under ``out``."""
    out = Path(out)
    runs = all_runs(out)
    per_table: dict[str, dict[str, list[RunRecord]]] = {"table1": defaultdict(list), "table2": defaultdict(list)}
    for r in runs:
        for t in (("table1", "table2") if r.table == "all" else tuple(r.table.split(","))):
            per_table[t][r.dataset].append(r)
    rendered, sig_parts = {}, []
    for table, datasets in per_table.items():
        parts, frames = [], []
        for ds in sorted(datasets) or [None]:
            recs = datasets.get(ds, []) if ds else []
            md, frame, sig = render_dataset(out, table, ds or "-", recs)
            split = recs[0].dataset_info.get("split", "temporal") if recs else "temporal"
            title = f"## {TITLES[table]} — dataset `{ds or 'none'}`" + (" (random split)" if split == "random" else "")
            parts.append(f"{title}\n\n{md}")
            sig_parts.append(f"{title}\n\n{sig}")
            frame.insert(0, "dataset", ds or "")
            frames.append(frame)
        rendered[f"{table}.md"] = "\n".join(parts)
        rendered[f"{table}.csv"] = _csv(pd.concat(frames, ignore_index=True))
    rendered["significance.md"] = significance.document(sig_parts)
    return rendered


def write_tables(out: Path, with_plots: bool = True) -> list[Path]:
    """Write the tables and significance.md, then (unless told not to) render the plots they link to."""
    written = []
    for name, text in render_all(out).items():
        path = Path(out) / name
        path.write_text(text)
        written.append(path)
    return written + (plots.write_plots(out) if with_plots else [])


def _csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False, float_format="%.6f")


def check_tables(out: Path) -> list[str]:
    """Names of committed table files (and significance.md) that differ from what the result files give.

    Plots are not compared: PNG bytes depend on the matplotlib version and fonts, and
    they are drawn from the same score files the checked tables are."""
    stale = []
    for name, text in render_all(out).items():
        path = Path(out) / name
        if not path.is_file() or path.read_text() != text:
            stale.append(str(path))
    return stale

"""Table 1, Table 2 and the control Table 3, rendered from result files only.

Every paper row is always shown: with numbers when a run exists, "not run"
when none does, "n/a" (with the reason in a footnote) when the data could not
serve the method. Methods outside the papers that belong to a table (logreg,
lightgbm, plugins) follow, marked "not in paper"; the oracle closes the table.
Derived rows — the gain of ``+h_text`` and the relative lift of HPRO — come from
a paired bootstrap over the same test leads, read from the per-lead score files.
Every row is also tested against its table's reference row (``benchmark.significance``):
a † marks p < 0.05 and ``significance.md`` lists every p-value; a row whose scores
do not vary is not tested and gets a "constant scores" footnote instead. What
validating the data warned about (recorded in each result) is repeated under the
dataset's table. Plots (``benchmark.plots``) are linked under each dataset's table.

Table 3 is a positive control, not a paper table: a world where the text carries
most of the signal (``textual``). Each row there is compared with the table-only
oracle (its Δ column and the † reference), and the footnote says what the
control expects: every text reader above that ceiling. It is rendered only for
results that hold a Table 3 run (Tables 1 and 2 are always rendered, their paper
rows "not run" where nothing ran).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from tabulate import tabulate

import leadrank_api as api
from benchmark import plots, registry, significance
from benchmark.metrics import METRIC_KEYS, Estimate, bootstrap, interval, parse_key, point
from benchmark.results import RunRecord, all_runs
from feature_store.errors import ConfigError
from feature_store.files import atomic_write_text
from llm_ranker import diagnostics

@dataclass(frozen=True)
class Row:
    label: str
    method: str
    embedding: str = "-"
    baseline: str | None = None  # the row this one is compared with (Table 1: gain column; Table 2: lift row)


LAYOUT = {"table1": ("auc",), "table2": METRIC_KEYS, "table3": ("auc",)}
TITLES = {"table1": "Table 1", "table2": "Table 2", "table3": "Table 3 — control: text-dominant world"}
WITH_EMBEDDING = ("table1", "table3")  # tables with an Embedding column and a ΔAUC column
DELTA_HEAD = {"table1": "Gain ΔAUC [95% CI]", "table3": "Δ vs table-only oracle [95% CI]"}
# A control table compares every row with one ceiling (its Δ column), whatever the row's own baseline.
CEILING = {"table3": "oracle_table"}
# What each table's claim is compared against: the rows that are some row's baseline (Table 1: the
# six CTR models without h_text; Table 2: asLLR w/o HPRO; Table 3: the table-only oracle), named so;
# see benchmark.significance.
THIN_TOP = 10  # sampled negatives in a top-K below which the footnote calls P@K / R@K coarse
REFERENCE_NAME = {"table1": "the best CTR model without h_text", "table2": "asLLR (w/o HPRO)",
                  "table3": "the table-only oracle"}
HEAD = {"auc": "AUC", "p_at_0.1": "P@0.1%", "p_at_1.0": "P@1.0%", "r_at_5.0": "R@5.0%"}


@dataclass
class Cell:
    """One method's figures on one dataset, aggregated over seeds."""

    status: str  # ok | not run | n/a | failed
    estimates: dict[str, Estimate]
    note: str = ""
    reason: str = ""


def aggregate(records: list[RunRecord]) -> Cell:
    """The mean over seeds when there are >= 3 (CI: :func:`over_seeds`); else the lowest seed's bootstrap CI."""
    ok = sorted((r for r in records if r.status == "ok"), key=lambda r: r.seed)
    if not ok:
        failed = sorted((r for r in records if r.status == "failed"), key=lambda r: r.seed)
        if failed:
            r = failed[0]
            return Cell("failed", {}, reason=f"{r.reason} (seed {r.seed}; traceback: "
                                            f"runs/{r.dataset}/{r.method}/seed{r.seed}.log)")
        return Cell("n/a", {}, reason=records[0].reason) if records else Cell("not run", {})
    if len(ok) < 3:
        note = "" if len(ok) == 1 else f"seed {ok[0].seed} of {len(ok)} (<3 seeds: bootstrap CI)"
        return Cell("ok", {k: ok[0].estimate(k) for k in ok[0].metrics}, note=note)
    est = {k: over_seeds([r.estimate(k) for r in ok], bounds=(0.0, 1.0)) for k in ok[0].metrics}
    return Cell("ok", est, note=f"mean of {len(ok)} seeds")


def over_seeds(estimates: list[Estimate], bounds: tuple[float, float] | None = None) -> Estimate:
    """The mean over seeds with a 95 % CI: the wider of the t-interval over seeds (training randomness)
    and the seeds' mean bootstrap half-width (test sampling) — a deterministic method has no spread over
    seeds, but its figure is still an estimate from a finite test set. Clipped to ``bounds``."""
    v = np.array([e.value for e in estimates], dtype=np.float64)
    t_half = stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v))
    boot_half = np.mean([(e.ci_high - e.ci_low) / 2 for e in estimates])
    half = max(t_half, boot_half) if np.isfinite(boot_half) else t_half
    lo, hi = v.mean() - half, v.mean() + half
    if bounds:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return Estimate(float(v.mean()), float(lo), float(hi))


def paired_over_seeds(out: Path, a: list[RunRecord], b: list[RunRecord], keys: tuple[str, ...], relative: bool,
                      n_resamples: int) -> dict[str, Estimate]:
    """:func:`paired` on every seed both rows ran; with >= 3 such seeds the mean over them (:func:`over_seeds`),
    else the lowest seed's."""
    runs_b = {r.seed: r for r in b if r.status == "ok"}
    pairs = sorted(((r, runs_b[r.seed]) for r in a if r.status == "ok" and r.seed in runs_b), key=lambda p: p[0].seed)
    per_seed = [paired(out, ra, rb, keys, relative, n_resamples) for ra, rb in pairs[:1 if len(pairs) < 3 else None]]
    if len(per_seed) == 1:
        return per_seed[0]
    bounds = (-1.0, np.inf) if relative else None  # a relative lift cannot fall below -100 %
    return {k: over_seeds([p[k] for p in per_seed], bounds) for k in keys}


def paired(out: Path, a: RunRecord, b: RunRecord, keys: tuple[str, ...], relative: bool,
           n_resamples: int) -> dict[str, Estimate]:
    """a − b (or (a − b) / b) per metric, with a paired bootstrap CI over the same test leads."""
    y, w, (sa, sb) = significance.paired_scores(out, [a, b])
    boots = bootstrap(y, [sa, sb], keys, n_resamples, seed=0, weight=w)
    res = {}
    for k in keys:
        va, vb = point(k, y, sa, w), point(k, y, sb, w)
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


def table_rows(table: str, methods: set[str]) -> list[Row]:
    """The rows of ``table``, in order: every paper row (run or not), other registered rows that
    have results ("not in paper"; the oracle last), and methods with results that are not
    registered here (a plugin not installed on the reviewer's machine)."""
    ranked = []
    for m in registry.rows(table):
        if m.in_paper or m.name in methods:
            suffix = "" if m.in_paper or m.family == api.Family.ORACLE else " *(not in paper)*"
            baseline = CEILING[table] if table in CEILING and m.name != CEILING[table] else m.baseline_in(table)
            ranked.append((m.order, m.name, Row(m.label_in(table) + suffix, m.name, m.embedding, baseline)))
    known = {name for _, name, _ in ranked}
    ranked += [(api.Method.order, m, Row(f"{m} *(not in paper)*", m)) for m in methods - known]
    return [row for _, _, row in sorted(ranked, key=lambda x: x[:2])]


@dataclass
class Built:
    """A dataset's table before rendering: Markdown cells and CSV records per line, and what the
    footnotes and significance.md need."""

    table: str
    rows: list[Row]
    cells: dict[str, Cell]
    tests: significance.Comparison
    lines: list[list[str]]
    records: list[dict]
    notes: list[str]
    na: list[str]


def build_rows(out: Path, table: str, records: list[RunRecord], n_boot: int) -> Built:
    """Aggregate each row's runs, test every row against the table's reference, and lay out each line."""
    keys = LAYOUT[table]
    by_method: dict[str, list[RunRecord]] = defaultdict(list)
    for r in records:
        by_method[r.method].append(r)
    rows = table_rows(table, set(by_method))
    cells = {row.method: aggregate(by_method.get(row.method, [])) for row in rows}
    ok = [row.method for row in rows if cells[row.method].status == "ok"]
    reference = tuple(dict.fromkeys(row.baseline for row in rows if row.baseline))
    tests = significance.compare(out, {m: _first(by_method[m]) for m in ok},
                                 {m: cells[m].estimates["auc"].value for m in ok}, reference,
                                 REFERENCE_NAME[table], keys, n_boot)
    built = Built(table, rows, cells, tests, [], [], [], [])
    for row in rows:
        cell = cells[row.method]
        line = [row.label] + ([row.embedding] if table in WITH_EMBEDDING else [])
        rec = {"row": row.label, "method": row.method, "status": cell.status}
        if table in WITH_EMBEDDING:
            rec["embedding"] = row.embedding
        if cell.status == "ok":
            line += [significance.mark(fmt(cell.estimates.get(k), k), tests.p_holm(row.method, k)) for k in keys]
            for k in keys:
                e = cell.estimates.get(k)
                rec.update({k: e.value, f"{k}_ci_low": e.ci_low, f"{k}_ci_high": e.ci_high} if e else {})
                rec[f"{k}_p"], rec[f"{k}_p_holm"] = tests.p(row.method, k), tests.p_holm(row.method, k)
        else:
            line += [cell.status] + ["–"] * (len(keys) - 1)
            if cell.status != "not run":
                built.na.append(f"{cell.status} — {row.label}: {cell.reason}")
        if cell.note:
            built.notes.append(f"{row.label}: {cell.note}")
        if cell.status == "ok" and "diagnostics" in _first(by_method[row.method]).info:
            built.notes.append(_diagnostics_line(row, _first(by_method[row.method])))
        elif cell.status == "ok" and _first(by_method[row.method]).family == api.Family.LLM:
            built.notes.append(f"Diagnostics, {row.label}: not recorded (the result predates them; a rerun records them).")
        if table in WITH_EMBEDDING:
            gain = None
            if row.baseline and cell.status == "ok" and cells.get(row.baseline, Cell("", {})).status == "ok":
                gain = paired_over_seeds(out, by_method[row.method], by_method[row.baseline], ("auc",), False,
                                         n_boot)["auc"]
                rec.update({"gain": gain.value, "gain_ci_low": gain.ci_low, "gain_ci_high": gain.ci_high})
            line.append(fmt(gain, "auc", signed=True) if row.baseline else "-")
        built.lines.append(line)
        built.records.append(rec)
        if table == "table2" and row.baseline:
            lift_line, lift_rec = _lift_row(out, by_method, cells, row, keys, n_boot)
            built.lines.append(lift_line)
            built.records.append(lift_rec)
    return built


def render_dataset(out: Path, table: str, dataset: str, records: list[RunRecord]) -> tuple[str, pd.DataFrame, str]:
    """The dataset's table (Markdown and CSV frame) and its section of significance.md."""
    n_boot = int(next((r.config.get("settings", {}).get("eval", {}).get("bootstrap", 1000) for r in records), 1000))
    built = build_rows(out, table, records, n_boot)
    keys = LAYOUT[table]
    ok = any(c.status == "ok" for c in built.cells.values())
    headers = (["Model", "Embedding"] if table in WITH_EMBEDDING else ["Method"]) + \
              [f"{HEAD[k]} [95% CI]" for k in keys] + ([DELTA_HEAD[table]] if table in WITH_EMBEDDING else [])
    md = tabulate(built.lines, headers=headers, tablefmt="github", disable_numparse=True)
    if ok:
        md += "\n\n" + plots.links(dataset)
    labels = {row.method: row.label + (f" ({row.embedding})" if row.embedding != "-" else "") for row in built.rows}
    sig = significance.section(built.tests, [(labels[r.method], r.method, built.cells[r.method].status)
                                             for r in built.rows], keys, HEAD, n_boot)
    notes = ([significance.footnote(built.tests, labels)] if ok else []) + \
        significance.constant_notes(built.tests, labels) + built.notes
    if table == "table3":
        notes.insert(0, _control_note(built, records))
    return md + "\n\n" + _footnotes(table, records, notes, built.na), pd.DataFrame(built.records), sig


def _control_note(built: Built, records: list[RunRecord]) -> str:
    """What the positive control expects, and which text readers that ran fail it."""
    reads_text = {r.method for r in records if r.status == "ok" and r.family != "oracle"
                  and r.info.get("inputs", {}).get("text", "none") != "none"}
    failing = [rec["row"] + (f" {rec['embedding']}" if rec.get("embedding", "-") != "-" else "")
               for rec in built.records if rec["method"] in reads_text and not rec.get("gain_ci_low", -np.inf) > 0]
    verdict = (f"Failing it: {', '.join(failing)} (Δ's CI not above 0)." if failing else
               f"Every text reader that ran ({len(reads_text)}) passes it." if reads_text else "No text reader ran.")
    return ("Control: in this world the transcripts carry most of the signal (the oracle's Δ is the most reading them "
            "can add), so every text reader (DeepFM + h_text, the LLM rows) is expected above the table-only "
            "ceiling: Δ > 0 with its 95 % CI above 0 (paired bootstrap on the same test leads). A text reader that "
            f"fails it is a bug to fix, not a result to report. {verdict}")


def _lift_row(out, by_method, cells, row, keys, n_boot):
    label = "Relative lift (w/ vs w/o HPRO)"
    rec = {"row": label, "method": f"{row.method} vs {row.baseline}", "status": "not run"}
    if cells[row.method].status == "ok" and cells[row.baseline].status == "ok":
        lift = paired_over_seeds(out, by_method[row.method], by_method[row.baseline], keys, True, n_boot)
        rec["status"] = "ok"
        for k in keys:
            rec.update({k: lift[k].value, f"{k}_ci_low": lift[k].ci_low, f"{k}_ci_high": lift[k].ci_high})
        return [label] + [fmt(lift[k], "lift", signed=True) for k in keys], rec
    return [label, "not run"] + ["–"] * (len(keys) - 1), rec


def _diagnostics_line(row: Row, r: RunRecord) -> str:
    """What an LLM row learned (its lowest seed's ``info["diagnostics"]``), flagged by the rules of
    :func:`llm_ranker.diagnostics.flags`."""
    d, auc = r.info["diagnostics"], r.estimate("auc").value
    label = row.label + (f" ({row.embedding})" if row.embedding != "-" else "")

    def num(x: float | None, spec: str) -> str:
        return "–" if x is None else format(x, spec)
    tenths = [x for x in d["loss_by_tenth"] if x is not None]
    pooled = diagnostics.pooled_within_stage_auc(d)
    facts = [f"training loss {num(tenths[0] if tenths else None, '.3f')} (first tenth) → "
             f"{num(tenths[-1] if tenths else None, '.3f')} (last)",
             f"valid AUC {num(d['valid_auc'], '.3f')} ({_valid_sample(d.get('valid_leads'))})",
             f"Spearman with prompt tokens {num(d['spearman_prompt_tokens'], '+.2f')} (prompt length alone: AUC "
             f"{num(d.get('prompt_tokens_auc'), '.3f')})"]
    if d["within_stage_auc"] is not None:
        facts.append(f"within-stage AUC {num(pooled, '.3f')} (pair-weighted over the current stages)")
    flagged = diagnostics.flags(d, auc)
    return (f"Diagnostics, {label} (seed {r.seed}): " + "; ".join(facts) + "."
            + (" **Flagged:** " + "; ".join(flagged) + " (rules: llm_ranker/diagnostics.py)." if flagged else ""))


def _valid_sample(leads: int | None) -> str:
    """What the validation AUC was measured on; results before ``valid_leads`` existed did not record it."""
    if leads is None:
        return "class-balanced sample"
    few = f": too few to read, fewer than {diagnostics.MIN_VALID_LEADS}" if leads < diagnostics.MIN_VALID_LEADS else ""
    return f"class-balanced sample of {leads:,} leads{few}"


def _first(records: list[RunRecord]) -> RunRecord:
    return min((r for r in records if r.status == "ok"), key=lambda r: r.seed)


def _test_leads_line(r: RunRecord) -> str:
    """Which test leads every row was scored on: the whole split, or the case-control design and its fractions."""
    info = r.dataset_info
    split = f"{info.get('split', 'temporal')} split"
    sample = info.get("test_sample", {"design": "full"})
    if sample["design"] == "full":
        return (f"Test leads: N = {r.n_test:,}, positives = {r.n_pos:,} ({100 * r.n_pos / max(r.n_test, 1):.2f} %); "
                f"{split}; every row is scored on these same leads.")
    fp = sample["positives"] / sample["positives_in_split"]
    fn = sample["negatives"] / sample["negatives_in_split"]
    return (f"Test leads: a case-control sample of the {split}'s "
            f"{sample['positives_in_split'] + sample['negatives_in_split']:,} leads, every row scored on the same "
            f"{r.n_test:,}: {sample['positives']:,} of its {sample['positives_in_split']:,} positives (fraction "
            f"{fp:.4g}) and {sample['negatives']:,} of its {sample['negatives_in_split']:,} negatives (fraction "
            f"{fn:.4g}), seed {sample['seed']}. Each lead is weighted by the inverse of its class's fraction: "
            "P@K, R@K and the plots estimate the whole split (k and N in weight); AUC and the DeLong test need no "
            "weights (uniform within a class)." + _thin_top(sample))


def _thin_top(sample: dict) -> str:
    """A warning for each K whose top K % of the weight holds few sampled negatives: there one heavy
    negative decides P@K, and its bootstrap CI undercovers (tests/test_metrics.py measures it)."""
    ks = sorted({parse_key(k)[1] for k in METRIC_KEYS if k != "auc"})
    thin = [(k, k / 100 * sample["negatives"]) for k in ks if k / 100 * sample["negatives"] < THIN_TOP]
    return "".join(f" P@{k:g} % / R@{k:g} % are coarse: the top {k:g} % holds only ~{n:.1f} sampled negatives "
                   f"(fewer than {THIN_TOP}), so their CIs undercover; raise eval.test_negatives." for k, n in thin)


def _footnotes(table: str, records: list[RunRecord], notes: list[str], na: list[str]) -> str:
    ok = [r for r in records if r.status == "ok"]
    lines = []
    if ok:
        r = ok[0]
        info = r.dataset_info
        lines.append(_test_leads_line(r))
    lines.append("95 % CIs: stratified bootstrap over test leads; where ≥ 3 seeds ran, the mean over seeds with the "
                 "wider of the t-interval over seeds and the seeds' mean bootstrap CI (gains and lifts likewise, "
                 "from the per-seed paired bootstraps). "
                 "P@K / R@K: top k = ceil(K % · N); ties at the cut get pro-rata credit "
                 "(the expected value under a random tie-break).")
    if table == "table1":
        lines.append("Gain: AUC(+h_text) − AUC(same model without), paired bootstrap on the same test leads.")
    elif table == "table3":
        lines.append("Δ: AUC(row) − AUC(table-only oracle), paired bootstrap on the same test leads.")
    else:
        lines.append("Relative lift: (w/ − w/o) / w/o per column, paired bootstrap on the same test leads.")
        lines += _exposure_notes(table, ok)
    providers = sorted({str(r.info.get("h_text_provider")) for r in ok if r.info.get("h_text_provider")})
    if providers:
        lines.append("h_text provider: " + ", ".join(providers) + ".")
    lines += _inputs_lines(ok)
    shown = {name: cls for name, cls in registry.all_methods().items() if name in {r.method for r in ok}}
    lines += [cls.footnote for cls in shown.values() if cls.footnote]  # in name order
    info = records[0].dataset_info if records else {}
    gaps = data_gaps(info.get("has_text", True), info.get("has_stage", True), info.get("has_outcomes", True),
                     llm=any(r.family == api.Family.LLM for r in ok),
                     hpro=any(cls.trains_on_outcomes for cls in shown.values()))
    if gaps:
        lines.append("Data: " + "; ".join(gaps) + ".")
    lines += [f"Data warning: {w}" for w in dict.fromkeys(w for r in records for w in r.warnings)]
    lines.append("\"not run\": no result file for this row (the method is not registered yet or was not selected).")
    lines += na + notes
    return "\n".join(f"- {x}" for x in lines) + "\n"


def data_gaps(has_text: bool, has_stage: bool, has_outcomes: bool, llm: bool = True, hpro: bool = True) -> list[str]:
    """What each method does with what the data lacks (`leadrank validate`'s summary and the table footnotes).

    It names rows, so it lives here: the feature store reports what the data has and knows no method."""
    gaps = []
    if not has_text:
        gaps.append("no text column: '+h_text' rows are n/a" + ("; LLM rows read prompts of the table features "
                                                                 "only (no dialogue part)" if llm else ""))
    if not has_stage:
        gaps.append("no current funnel stage: funnel rows (Funnel+Recency, Funnel+CTR) are n/a")
    if not has_outcomes and hpro:
        gaps.append("no outcome funnel: HPRO uses label-only pairs (converted over not converted)")
    return gaps


def _inputs_lines(ok: list[RunRecord]) -> list[str]:
    """One line per family: what its rows read of the dataset's input view (the records' ``info["inputs"]``),
    so a reader sees that rows differ in the method, not in the columns they were shown."""
    inputs = {r.method: r.info["inputs"] for r in ok if isinstance(r.info.get("inputs"), dict)}
    if not inputs:
        return []
    widest = max((v["columns"] for v in inputs.values()), key=len)

    def reads(v: dict) -> str:
        cols = v["columns"]
        table = (", ".join(cols) if len(cols) <= 3 else f"all {len(cols)} table columns" if cols == widest
                 else f"{len(cols)} of the {len(widest)} table columns")
        text = {"none": "", "prompt": "text (in the prompt)", "h_text": "text (as its h_text embedding)"}[v["text"]]
        return " + ".join(p for p in (table, "current stage" * v["stage"], text) if p) or "no observable input"

    families: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for r in ok:
        if r.method in inputs:
            families[r.family][reads(inputs[r.method])].add(r.method)
    lines = []
    for family, kinds in sorted(families.items()):
        several = len(kinds) > 1
        lines.append(f"Inputs, {family}: " + "; ".join(
            k + (f" ({len(m)} row{'s' * (len(m) > 1)})" if several else "") for k, m in sorted(kinds.items())) + ".")
    return lines


def _exposure_notes(table: str, ok: list[RunRecord]) -> list[str]:
    """Whether each compared pair of rows (w/ vs w/o HPRO) trained at equal exposure, seed by seed: the same
    leads in the same batches, by the ``train_exposure`` their results record."""
    runs = {(r.method, r.seed): r for r in ok}
    notes = []
    for row in table_rows(table, {r.method for r in ok}):
        pairs = [(runs[row.method, s], runs[row.baseline, s]) for m, s in runs
                 if m == row.method and row.baseline and (row.baseline, s) in runs]
        exposures = [(a.info.get("train_exposure"), b.info.get("train_exposure")) for a, b in pairs]
        if not exposures or any(x is None or y is None for x, y in exposures):
            continue
        first = exposures[0][0]
        if all(x == y for x, y in exposures):
            notes.append(f"Equal exposure: {row.label} and {row.baseline} trained on the same leads in the same "
                         f"batches ({len(pairs)} seed(s); seed {pairs[0][0].seed}: {first['leads']:,} leads, "
                         f"{first['positives']:,} positives, {first['steps']:,} optimizer steps).")
        else:
            unequal = [a.seed for (a, _), (x, y) in zip(pairs, exposures) if x != y]
            notes.append(f"UNEQUAL exposure: {row.label} and {row.baseline} trained on different batches "
                         f"(seed(s) {unequal}): the lift mixes the loss with the sample.")
    return notes


def require_results(out: Path) -> None:
    """Refuse, in one line and before writing anything, a results folder with no result file."""
    out = Path(out)
    if not out.is_dir():
        raise ConfigError(f"results folder {out} does not exist", hint="pass the --out of a finished `leadrank run`")
    if not any((out / "runs").glob("*/*/seed*.json")):
        raise ConfigError(f"no result files in {out}/runs/", hint="run `leadrank run --out ...` first")


def render_all(out: Path) -> dict[str, str]:
    """File name -> text of every rendered file (table1.md/.csv, table2.md/.csv, table3.md/.csv where a
    Table 3 run exists, significance.md) from the result files under ``out``."""
    out = Path(out)
    runs = all_runs(out)
    per_table: dict[str, dict[str, list[RunRecord]]] = {t: defaultdict(list) for t in LAYOUT}
    for r in runs:
        for t in (api.PAPER_TABLES if r.table == "all" else tuple(r.table.split(","))):
            per_table[t][r.dataset].append(r)
    # the paper tables even where nothing ran (their rows "not run"); the control table only where it ran
    per_table = {t: d for t, d in per_table.items() if d or t in api.PAPER_TABLES}
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
        atomic_write_text(path, text)
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

"""Paired significance tests of every table row against the reference row of its table.

Every row of a table is scored on the same test leads, so two rows share most of
their sampling noise. Comparing their two 95 % CIs would ignore that and hide
real differences; a paired test on the same leads does not.

* **AUC** — the DeLong, DeLong & Clarke-Pearson (1988) test for two correlated
  AUCs, computed with the midrank algorithm of Sun & Xu (2014): the structural
  components ("placements") of every lead come from three rankings, so a test
  costs O(N log N) instead of the O(n_pos · n_neg) pair comparisons of the
  definition. Neither scipy nor scikit-learn ships a DeLong test; the midranks
  come from ``scipy.stats.rankdata`` and the normal tail from ``scipy.stats.norm``.
* **P@K / R@K** — a paired stratified bootstrap over the test leads: the same
  resamples (``benchmark.metrics.bootstrap``) score both rows, and the two-sided
  p-value is ``2 · min(P*(Δ ≤ 0), P*(Δ ≥ 0))`` over the resampled differences Δ
  (each share counted as ``(hits + 1) / (B + 1)``, so it is never 0 and a row
  identical to the reference gets p = 1). This inverts the percentile interval
  of Δ: p < 0.05 exactly when the 95 % percentile interval excludes 0.

The reference row is the one the paper's claim is about: Table 1 the best CTR
model without ``h_text`` (by AUC), Table 2 asLLR without HPRO. When it did not
run, the best non-oracle row by AUC stands in and the note says so.

A row whose scores do not vary (every test lead scored the same, e.g. a tree
model that found no split on a small file) ranks nothing: its AUC is 0.5 and
its P@K the base rate by construction, not by estimate. It is not tested, so it
carries no mark and takes no part in the correction, is never the reference,
and the table says "constant scores" in a footnote.

A table makes dozens of such comparisons (every row, every metric), so a † at
p < 0.05 would mark about one in twenty rows by chance alone. The marks
therefore use Holm's step-down correction over every test of the table
(``statsmodels.stats.multitest.multipletests``; it controls the family-wise
error rate under any dependence between the tests); significance.md lists the
raw and the Holm-adjusted p-value of every cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.multitest import multipletests
from tabulate import tabulate

from benchmark.metrics import bootstrap, point
from benchmark.results import RunRecord, read_scores

ALPHA = 0.05
MARK = "†"


@dataclass(frozen=True)
class Test:
    """One metric of one row against the reference row, on the same test leads."""

    value: float  # the row's point value
    reference: float  # the reference row's point value
    p: float  # two-sided: DeLong for AUC, paired bootstrap for P@K / R@K
    p_holm: float = float("nan")  # adjusted over every test of the table (set by ``compare``)

    @property
    def diff(self) -> float:
        return self.value - self.reference

    @property
    def significant(self) -> bool:
        """Significant after the table's Holm correction."""
        return self.p_holm < ALPHA


@dataclass
class Comparison:
    """One dataset of one table: its reference row and every other row's tests."""

    reference: str | None  # method name; None when no row ran
    note: str  # how the reference was chosen
    tests: dict[str, dict[str, Test]] = field(default_factory=dict)  # method -> metric -> test
    constant: tuple[str, ...] = ()  # methods whose scores do not vary: never tested

    def p(self, method: str, key: str) -> float | None:
        test = self.tests.get(method, {}).get(key)
        return None if test is None else test.p

    def p_holm(self, method: str, key: str) -> float | None:
        test = self.tests.get(method, {}).get(key)
        return None if test is None else test.p_holm


def delong(y: np.ndarray, score_sets: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """AUC of each score vector and the DeLong covariance matrix of these AUCs, shape (k, k).

    Sun & Xu (2014): with midranks T over all leads, T_X over the positives and
    T_Y over the negatives, a positive's placement ``(T - T_X) / n`` is the share
    of negatives scored below it (ties count one half) and a negative's
    ``1 - (T - T_Y) / m`` the share of positives scored above it. The AUC is the
    mean positive placement, and its variance is ``S10 / m + S01 / n``, the
    sample covariances of the placements."""
    pos = np.asarray(y) == 1
    s = np.atleast_2d(np.asarray(score_sets, dtype=np.float64))
    m, n = int(pos.sum()), int((~pos).sum())
    if m < 2 or n < 2:
        raise ValueError("DeLong needs at least two positives and two negatives")
    t_all = stats.rankdata(s, axis=1)
    v10 = (t_all[:, pos] - stats.rankdata(s[:, pos], axis=1)) / n
    v01 = 1.0 - (t_all[:, ~pos] - stats.rankdata(s[:, ~pos], axis=1)) / m
    cov = np.atleast_2d(np.cov(v10)) / m + np.atleast_2d(np.cov(v01)) / n
    return v10.mean(axis=1), cov


def delong_test(y: np.ndarray, scores: np.ndarray, reference: np.ndarray) -> Test:
    """Two-sided DeLong test of AUC(scores) = AUC(reference) on the same leads (p = NaN below 2 leads per class)."""
    if min(np.sum(np.asarray(y) == 1), np.sum(np.asarray(y) != 1)) < 2:
        return Test(point("auc", y, scores), point("auc", y, reference), float("nan"))
    auc, cov = delong(y, [scores, reference])
    diff = auc[0] - auc[1]
    var = max(cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1], 0.0)
    if var == 0.0:  # identical rankings (or a degenerate case): no evidence of a difference unless diff != 0
        p = 1.0 if diff == 0.0 else 0.0
    else:
        p = float(2.0 * stats.norm.sf(abs(diff) / np.sqrt(var)))
    return Test(float(auc[0]), float(auc[1]), p)


def bootstrap_p(diffs: np.ndarray) -> float:
    """Two-sided p-value of paired bootstrap differences (see the module docstring)."""
    diffs = np.asarray(diffs, dtype=np.float64)
    diffs = diffs[np.isfinite(diffs)]
    b = len(diffs)
    below, above = (np.sum(diffs <= 0) + 1) / (b + 1), (np.sum(diffs >= 0) + 1) / (b + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def paired_scores(out: Path, records: list[RunRecord]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Labels, sampling weights and each record's scores, aligned on the first record's lead order.

    Score files written before the weight column existed scored the whole test split: weight 1."""
    return _aligned([read_scores(out, r) for r in records])


def _aligned(frames: list[pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    first = frames[0]
    ids = first["lead_id"].to_numpy()
    aligned = [f if np.array_equal(f["lead_id"].to_numpy(), ids) else f.set_index("lead_id").loc[ids].reset_index()
               for f in frames]
    weight = first["weight"].to_numpy(np.float64) if "weight" in first else np.ones(len(first))
    return first["label"].to_numpy(), weight, [f["score"].to_numpy() for f in aligned]


def choose_reference(auc: dict[str, float], preferred: tuple[str, ...], preferred_name: str,
                     constant: tuple[str, ...] = ()) -> tuple[str | None, str]:
    """The best-AUC method of ``preferred`` that ran, else the best non-oracle one, never one of ``constant``
    (scores that do not vary); and a note saying how it was chosen ("" when the one preferred method ran)."""
    ran = [m for m in preferred if m in auc and m not in constant]
    if ran:
        best = max(ran, key=lambda m: (auc[m], m))
        return best, f"{preferred_name}, best AUC of the {len(ran)} that ran" if len(preferred) > 1 else ""
    others = [m for m in auc if m != "oracle" and m not in constant]
    why = "scored every test lead the same" if any(m in auc for m in preferred) else "did not run"
    if not others:
        varying = " with varying scores" if constant else ""
        return None, f"no reference: neither {preferred_name} nor any other non-oracle row ran{varying}"
    best = max(others, key=lambda m: (auc[m], m))
    return best, f"fallback, because {preferred_name} {why}: the best non-oracle row by AUC"


def compare(out: Path, runs: dict[str, RunRecord], auc: dict[str, float], preferred: tuple[str, ...],
            preferred_name: str, keys: tuple[str, ...], n_resamples: int) -> Comparison:
    """Test every run of ``runs`` (method -> the run whose scores are compared) against the reference.

    ``auc`` (method -> the AUC the table shows) picks the reference row."""
    frames = {m: read_scores(out, r) for m, r in runs.items()}
    constant = tuple(sorted(m for m, f in frames.items() if f["score"].nunique() <= 1))
    reference, note = choose_reference(auc, preferred, preferred_name, constant)
    result = Comparison(reference, note, constant=constant)
    others = sorted(m for m in runs if m != reference and m not in constant)
    if reference is None or not others:
        return result
    y, w, (ref, *scores) = _aligned([frames[reference]] + [frames[m] for m in others])
    boot_keys = tuple(k for k in keys if k != "auc")
    boots = bootstrap(y, [ref, *scores], boot_keys, n_resamples, seed=0, weight=w) if boot_keys else {}
    for i, (method, s) in enumerate(zip(others, scores), start=1):
        tests = {"auc": delong_test(y, s, ref)} if "auc" in keys else {}
        for k in boot_keys:
            tests[k] = Test(point(k, y, s, w), point(k, y, ref, w), bootstrap_p(boots[k][i] - boots[k][0]))
        result.tests[method] = tests
    return holm(result)


def holm(comparison: Comparison) -> Comparison:
    """Every test's p-value adjusted by Holm's step-down procedure over all tests of the table
    (a test whose p is undefined takes no part and stays undefined)."""
    cells = [(m, k) for m, tests in comparison.tests.items() for k, t in tests.items() if np.isfinite(t.p)]
    if cells:
        adjusted = multipletests([comparison.tests[m][k].p for m, k in cells], alpha=ALPHA, method="holm")[1]
        for (m, k), p in zip(cells, adjusted):
            comparison.tests[m][k] = replace(comparison.tests[m][k], p_holm=float(p))
    return comparison


def mark(text: str, p: float | None) -> str:
    """``text`` (a formatted figure, e.g. "0.8123 [0.80, 0.82]") with † after its value when ``p``
    (the Holm-adjusted p-value) < ALPHA."""
    if p is None or not p < ALPHA:
        return text
    value, sep, rest = text.partition(" ")
    return f"{value}{MARK}{sep}{rest}"


def footnote(comparison: Comparison, labels: dict[str, str]) -> str:
    """The table footnote that explains the † marks."""
    if comparison.reference is None:
        return f"Significance: {comparison.note}."
    how = f"; reference = {comparison.note}" if comparison.note else ""
    n = sum(len(t) for t in comparison.tests.values())
    return (f"{MARK}: differs from the reference row, {labels[comparison.reference]}, at p < {ALPHA} after "
            f"Holm's correction over the {n} tests of this table (paired DeLong test for AUC, paired bootstrap for "
            f"P@K / R@K, on the same test leads{how}). Every p-value, raw and adjusted: "
            "[significance.md](significance.md).")


def constant_notes(comparison: Comparison, labels: dict[str, str]) -> list[str]:
    """A footnote for each row whose scores do not vary: why it has no mark."""
    return [f"{labels[m]}: constant scores (every test lead scored the same), so AUC 0.5 and P@K / R@K at the base "
            f"rate by construction; it ranks nothing and is not tested against the reference (no {MARK})."
            for m in comparison.constant]


def section(comparison: Comparison, rows: list[tuple[str, str, str]], keys: tuple[str, ...],
            heads: dict[str, str], n_resamples: int) -> str:
    """One dataset's part of significance.md (below its title); ``rows`` = (label, method, status) of every row."""
    labels = {method: label for label, method, _ in rows}
    if comparison.reference is None:
        return f"{comparison.note[0].upper()}{comparison.note[1:]}.\n"
    how = f" ({comparison.note})" if comparison.note else ""
    lines = [f"Reference: {labels[comparison.reference]}{how}.", ""]
    table = []
    for label, method, status in rows:
        if method == comparison.reference:
            table.append([label] + ["reference"] + ["–"] * (3 * len(keys) - 1))
        elif method in comparison.constant:
            table.append([label] + ["constant scores: not tested"] + ["–"] * (3 * len(keys) - 1))
        elif method in comparison.tests:
            tests = comparison.tests[method]
            table.append([label] + [c for k in keys for c in (_diff(tests[k], k), _p(tests[k].p),
                                                              _p(tests[k].p_holm, mark=True))])
        else:
            table.append([label] + [status] + ["–"] * (3 * len(keys) - 1))
    headers = ["Row"] + [h for k in keys
                         for h in (f"Δ{heads[k]} vs ref.", f"p ({'DeLong' if k == 'auc' else 'bootstrap'})", "p Holm")]
    lines += [tabulate(table, headers=headers, tablefmt="github", disable_numparse=True), ""]
    if any(k != "auc" for k in keys):
        lines += [f"- Bootstrap: {n_resamples} paired stratified resamples; the smallest attainable p is "
                  f"{2 / (n_resamples + 1):.4f}.", ""]
    return "\n".join(lines)


def document(sections: list[str]) -> str:
    """significance.md: the method, then one section per (table, dataset)."""
    head = ("# Significance of every row against its table's reference row\n\n"
            f"Two-sided p-values; {MARK} in the tables marks p < {ALPHA} after Holm's step-down correction over "
            "every test of the table (all rows, all metrics; `p Holm`). AUC: paired DeLong test (DeLong et al. 1988, "
            "fast midrank algorithm of Sun & Xu 2014). P@K / R@K: paired stratified bootstrap over the same test "
            "leads, p = 2·min(P*(Δ ≤ 0), P*(Δ ≥ 0)). Δ = row − reference (AUC in absolute units, P@K / R@K in "
            "percentage points). Tests compare the lowest seed of each row. Reference rows: Table 1 the best CTR "
            "model without h_text, Table 2 asLLR (w/o HPRO); when that did not run, the best non-oracle row by AUC.\n")
    return "\n".join([head, *sections])


def _diff(test: Test, key: str) -> str:
    return f"{test.diff:+.4f}" if key == "auc" else f"{100 * test.diff:+.2f} pp"


def _p(p: float, mark: bool = False) -> str:
    if not np.isfinite(p):
        return "n/a (< 2 leads of a class)"
    return f"{p:.3g}" + (f" {MARK}" if mark and p < ALPHA else "")

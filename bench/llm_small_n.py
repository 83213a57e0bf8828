"""At a small learning-curve point, does the fine-tune lose to a plain probe on its own frozen features?

On the standard curves at 1,000 training leads (15 positives) the fine-tuned LLM rows rank below
logistic regression on the table columns, and their diagnostics show why: the training loss falls far
below the rows' held-out figures (15 positives drawn ~16 times by the fine-tune and ~50 times by the
500-step head probe), and the point's pro-rata validation cut holds about one positive, so nothing can
be chosen on it. This experiment measures the candidate that needs neither: the backbone left as the
fine-tune starts it (the profile's readout: block, pooling), its pooled state per lead fed to a
standardised logistic regression whose C is chosen by stratified cross-validation on the *training*
leads alone (what the logistic-regression row does on the table columns). It trains on exactly the
curve point's training leads (``train_ids_sha256`` checked against the committed logistic-regression
run) and is scored on the same test leads as the committed rows of that point, against each of which
it reports the paired AUC difference. Nothing is selected on the test leads: the candidate is fixed
before they are scored, and the file is a figure for a decision, not a row of a table.

Writes ``<results>/ablations/small_n_probe.md`` and ``.json``.

    .venv/bin/python bench/llm_small_n.py --profile standard --dataset benchmark --train-size 1000
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _record import machine  # noqa: E402
from llm_readout_probe import add_sample_args, paired_gain, results_dir, write_report  # noqa: E402

from benchmark.curves import point_dir  # noqa: E402
from benchmark.profile import load_profile  # noqa: E402
from benchmark.results import json_path, read_run, read_scores  # noqa: E402
from benchmark.runner import ids_sha256, load_splits  # noqa: E402
from feature_store.typed import parse  # noqa: E402
from llm_ranker.config import LLMParams  # noqa: E402
from llm_ranker.ranker import LLMRanker, subsample  # noqa: E402

CS = (1e-4, 1e-3, 1e-2, 1e-1, 1.0)  # inverse regularisation (standardised states), chosen by CV on training leads
FOLDS = 3  # stratified: 15 positives leave 5 per fold
ROWS = ("logreg", "asllr_base", "asllr_ce", "asllr_hpro")  # the committed rows it is read against


def cv_probe(x: np.ndarray, y: np.ndarray, seed: int) -> tuple[object, float, float]:
    """A standardised logistic regression, C by stratified ``FOLDS``-fold CV AUC on (x, y) alone, refit on all
    of it; returns the fit, its C and the CV AUC of that C."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    def model(c: float):
        return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
    cv = StratifiedKFold(FOLDS, shuffle=True, random_state=seed)
    cv_auc = {c: float(cross_val_score(model(c), x, y, cv=cv, scoring="roc_auc").mean()) for c in CS}
    best = max(CS, key=lambda c: (cv_auc[c], -c))  # ties: the stronger regularisation
    return model(best).fit(x, y), best, cv_auc[best]


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_sample_args(ap)
    ap.add_argument("--train-size", type=int, default=1000, help="the learning-curve point (training leads)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    t0 = time.perf_counter()
    profile = load_profile(a.profile, a.overrides)
    entries = {e.name: e for e in profile.datasets}
    if a.dataset not in entries:
        ap.error(f"profile {a.profile} has no dataset {a.dataset!r} (it has {sorted(entries)})")
    cfg = parse(LLMParams, profile.config["llm"], section="llm")
    splits = load_splits(entries[a.dataset], profile)[1].with_train_budget(a.train_size, profile.eval.subsample_seed)
    train = subsample(splits.train, cfg.train_max_leads, a.seed)
    point = point_dir(results_dir(a, profile) / "curves", a.train_size)
    records = {m: read_run(json_path(point, a.dataset, m, a.seed)) for m in ROWS
               if json_path(point, a.dataset, m, a.seed).is_file()}
    if "logreg" not in records:
        ap.error(f"{point} has no logreg run of seed {a.seed}: run `leadrank curve --profile {profile.name} "
                 f"--train-sizes {a.train_size} --methods logreg` first")
    if records["logreg"].dataset_info["train_ids_sha256"] != ids_sha256(splits.train.ids):
        raise SystemExit(f"{point}: the committed logreg run trained on other leads than this point's")

    from leadrank_api import torch_threads

    ranker = LLMRanker(cfg, profile.cache_dir, a.seed, terms=[], sampler=None, progress=True).untrained(train.schema)
    with torch_threads(cfg.threads):
        x_train, x_test = (ranker.predict(s)["pooled"].astype(np.float64) for s in (train, splits.test))
    fit, c, cv_auc = cv_probe(x_train, train.y, a.seed)
    cand = fit.decision_function(x_test)

    # the test labels are hidden from methods: read them from the committed logreg run's score file
    frames = {m: read_scores(point, r).set_index("lead_id").loc[splits.test.ids] for m, r in records.items()}
    y = frames["logreg"]["label"].to_numpy()
    scores = {m: f["score"].to_numpy() for m, f in frames.items()}
    versus = {}
    for m, s in scores.items():
        gain = paired_gain(y, cand, s)  # candidate − row, the same resamples for every row
        versus[m] = {"auc": round(records[m].estimate("auc").value, 4), "delta": gain["gain"], "ci": gain["ci"]}
    from sklearn.metrics import roc_auc_score

    report = {"backbone": cfg.backbone, "dataset": a.dataset, "profile": profile.name, "seed": a.seed,
              "readout": {"layer": cfg.readout_layer, "pooling": cfg.pooling},
              "train_leads": len(train), "train_positives": int(train.y.sum()), "test_leads": len(splits.test),
              "C": c, "cv_auc": round(cv_auc, 4), "test_auc": round(float(roc_auc_score(y, cand)), 4), "versus": versus,
              "seconds": round(time.perf_counter() - t0, 1), "cpu": machine()["cpu"]}
    command = (f".venv/bin/python bench/llm_small_n.py --profile {a.profile} --dataset {a.dataset} "
               f"--train-size {a.train_size} --seed {a.seed}")
    write_report(a, profile, "small_n_probe", report, render(report, command))
    return report


def render(report: dict, command: str) -> str:
    from tabulate import tabulate

    rows = [[m, v["auc"], f"{v['delta']:+.4f} [{v['ci'][0]:+.4f}, {v['ci'][1]:+.4f}]"]
            for m, v in report["versus"].items()]
    ro = report["readout"]
    where = "the last block" if ro["layer"] is None else f"block {ro['layer']}"
    return (f"# A frozen-feature probe at a small curve point ({report['backbone']}, {report['dataset']}, "
            f"{report['train_leads']:,} training leads)\n\n"
            f"The backbone as the fine-tune starts it, its state after {where} pooled by `{ro['pooling']}`, "
            f"read by a standardised logistic regression with C chosen by {FOLDS}-fold stratified CV on the "
            f"{report['train_leads']:,} training leads ({report['train_positives']} positives) of the curve point: "
            f"C = {report['C']:g} (CV AUC {report['cv_auc']:.4f}). On the point's {report['test_leads']:,} test leads it "
            f"ranks at AUC **{report['test_auc']:.4f}**. Against the committed rows of the same point (same training "
            f"and test leads), paired bootstrap of the AUC difference (candidate − row, 1,000 resamples):\n\n"
            + tabulate(rows, headers=["row", "its AUC", "Δ AUC [95% CI]"], tablefmt="github")
            + "\n\nNothing here was chosen on the test leads; the candidate was fixed before they were scored.\n\n"
            f"Regenerate: `{command}` ({report['seconds']:.0f} s on {report['cpu']}).\n")


if __name__ == "__main__":
    main()

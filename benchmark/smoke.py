"""What ``leadrank validate`` adds to the data checks: every method that a run would start on the
spec actually fits it.

Checking the data alone misses what only a model finds out (a one-hot encoder
given zero columns, an interaction layer given no categorical feature). So
validate fits each method a run would start — with small settings, on a
class-aware sample of the train split — and scores a sample of the test leads.
A method whose requirement the data cannot meet is reported as n/a, exactly
as the run would record it; a method that raises is an error, with its reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

import leadrank_api as api
from benchmark import registry
from benchmark.profile import load_profile
from benchmark.runner import missing_requirement, one_line, prepare_inputs
from feature_store.sampling import class_sample
from feature_store.spec import DatasetSpec
from feature_store.split import Split, SplitSet
from feature_store.store import Dataset

SAMPLE = {"train": 1500, "valid": 400, "test": 400}  # leads per part fitted and scored
SMALL = ["eval.bootstrap=20", "ctr.epochs=1", "lightgbm.max_rounds=50", "llm.train_max_leads=64",
         "llm.max_length=192", "llm.checkpoint_every=0", "h_text.provider=tfidf", "h_text.dim=4"]


@dataclass(frozen=True)
class FitCheck:
    method: str
    status: str  # ok | n/a | failed
    reason: str = ""

    def __str__(self) -> str:
        return f"  {self.method:24s} {self.status}" + (f": {self.reason}" if self.reason else "")


def fit_checks(spec: DatasetSpec, data_dir: Path, methods: list[str] | None = None) -> list[FitCheck]:
    """Fit and score every by-default method (or ``methods``) of the spec's tables on a sample of it."""
    profile = load_profile("quick", [f"data_dir={data_dir}", *SMALL])
    ds = Dataset.load(spec)
    splits = _sample(ds.splits())
    chosen = methods or [n for n, m in registry.all_methods().items() if m.tables and m.by_default]
    out = []
    for name in chosen:
        cls = registry.get(name)
        why = missing_requirement(cls, splits)
        if why:
            out.append(FitCheck(name, "n/a", why))
            continue
        try:
            method = cls(api.MethodContext(settings=api.method_settings(cls, profile.config),
                                           cache_dir=str(profile.cache_dir)))
            (train, valid, test), _ = prepare_inputs(cls, ds, splits, profile)
            scores = np.asarray(method.fit(train, valid).score(test), dtype=np.float64)
            bad = scores.shape != (len(test),) or not np.isfinite(scores).all()
            out.append(FitCheck(name, "failed", f"returned {scores.shape} scores, some not finite") if bad
                       else FitCheck(name, "ok"))
        except Exception as e:  # noqa: BLE001  (reported, like a run would record it)
            out.append(FitCheck(name, "failed", one_line(e)))
    return out


def _sample(splits: SplitSet) -> SplitSet:
    """Each part cut to ``SAMPLE`` leads: all positives up to half of it, then negatives (train and valid);
    test at random (its labels are hidden from methods; nothing is scored against them here, so the
    truth is left as it was)."""
    rng = np.random.default_rng(0)

    def cut(split: Split, n: int, labelled: bool) -> Split:
        if len(split) <= n:
            return split
        if not labelled:
            return split.take(np.sort(rng.choice(len(split), n, replace=False)))
        y = split.y
        pos = min(int((y == 1).sum()), n // 2)
        return split.take(class_sample(y, pos, n - pos, rng))
    return replace(splits, train=cut(splits.train, SAMPLE["train"], True),
                   valid=cut(splits.valid, SAMPLE["valid"], True), test=cut(splits.test, SAMPLE["test"], False))


"""HPRO's preference pairs over the sales funnel: the ``hpro:`` settings, the tiers, the pair builder.

Pairs are formed *within a training batch* from the funnel outcomes after the
scoring moment (training supervision only; never a model input; read from
train/valid only). Every ordered pair (w, l) falls in at most one tier,
checked in priority order, so the tiers partition the pairs and dropping a
tier (ablation) really removes its pairs instead of moving them to another tier:

* ``global``      — w reached the deepest stage (lock), l the shallowest (defeat); m = 1.0
* ``key_action``  — w reached ``key_stage`` (test drive) or deeper, l did not; m = 0.5
* ``soft_signal`` — w had a long call, l a short one (call seconds after scoring;
  thresholds: train-set quantiles of the leads that had a call, or fixed seconds),
  and w's funnel stage is not below l's, so no soft pair contradicts the funnel; m = 0.1
* ``label``       — the fallback where the data has no outcome funnel: converted
  over not converted, m = 1.0 (also selectable as an ablation: ``hpro.tiers=[label]``).

Two users of one definition: the HPRO loss (:mod:`llm_ranker.hpro`) takes the
pairs of its enabled tiers, and the tier-aware batch sampler
(:class:`llm_ranker.sampler.TierSampler`) — shared by *every* LLM row, so that
asLLR w/o and w/ HPRO see the same batches — composes batches from all funnel
tiers (:meth:`PairSpec.for_batches`). This module imports no method, so both
``llm_ranker.methods`` and ``llm_ranker.hpro`` can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import pandas as pd
from pydantic import field_validator, model_validator

from feature_store.errors import ConfigError
from feature_store.split import Split
from leadrank_api import Params

TIERS = ("global", "key_action", "soft_signal", "label")  # priority order; the index is the tier id
FUNNEL_TIERS = TIERS[:3]
SHORT, MID, LONG = 0, 1, 2  # call classes; -1 = no call after scoring / unknown


# ---- configuration ---------------------------------------------------------------------------------
DEFAULT_MARGINS = {"global": 1.0, "key_action": 0.5, "soft_signal": 0.1, "label": 1.0}


class HPROParams(Params):
    """The profile's ``hpro:`` section (the scoring rule is ``llm.score``, as for every LLM row).

    ``key_stage`` and the soft-call thresholds *define* the tiers; every LLM row
    reads them to compose its batches (equal exposure). ``tiers``, margins and
    ``lambda1`` shape the HPRO loss only."""

    tiers: tuple[str, ...] = FUNNEL_TIERS
    """HPRO loss: tiers whose pairs reach L_HPRO (ablation: drop some, or [label] = label-only pairs)."""
    margins: dict[str, float] = DEFAULT_MARGINS
    """HPRO loss: margin per tier (tiers not named keep the paper's)."""
    margin_scale: float = 1.0
    """HPRO loss: multiplies every margin; 0 = every margin 0 (ablation)."""
    lambda1: float = 1.0
    """HPRO loss: weight of L_HPRO."""
    key_stage: str = "test_drive"
    """Tier definition (every LLM row's batches): final stage at or beyond which a lead wins a key_action pair."""
    soft_quantiles: tuple[float, float] = (0.25, 0.75)
    """Tier definition: short call <= this lower quantile, long >= the upper one, of train call seconds."""
    soft_seconds: tuple[float, float] | None = None
    """Tier definition: or fixed (short_max, long_min) seconds instead of the quantiles."""

    @field_validator("margins", mode="before")
    @classmethod
    def _fill_margins(cls, value: Any) -> Any:
        return {**DEFAULT_MARGINS, **value} if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _check(self) -> "HPROParams":
        bad = [t for t in (*self.tiers, *self.margins) if t not in TIERS]
        if bad or not self.tiers:
            raise ValueError(f"unknown or no tier(s) {bad}; known: {list(TIERS)}")
        if "label" in self.tiers and len(self.tiers) > 1:
            raise ValueError("'label' (label-only pairs) cannot be mixed with funnel tiers")
        lo, hi = self.soft_quantiles
        if not 0 <= lo <= hi <= 1:
            raise ValueError(f"soft_quantiles must be 0 <= lo <= hi <= 1, got {self.soft_quantiles}")
        return self

    def margin(self, tier: str) -> float:
        return self.margin_scale * self.margins[tier]


# ---- pairs -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PairSpec:
    """How per-lead targets become pairs: funnel depths, call-class thresholds, enabled tiers and margins."""

    mode: str  # "funnel" (outcome funnel present) | "label" (label-only pairs)
    tiers: tuple[str, ...]  # enabled tiers
    margins: dict[str, float]  # tier -> margin (after margin_scale)
    lock: int = -1  # depth of the deepest stage
    defeat: int = 0  # depth of the shallowest stage
    key: int | None = None  # depth of key_stage (None: not in the funnel -> no key_action pairs)
    short_max: float = float("nan")
    long_min: float = float("nan")
    stage_order: tuple[str, ...] = ()

    @classmethod
    def from_split(cls, train: Split, cfg: HPROParams) -> "PairSpec":
        """Read the funnel from ``train`` (train-set quantiles for the soft tier)."""
        out, order = train.outcomes, tuple(train.schema.final_stage_order)
        label_mode = cfg.tiers == ("label",)
        if label_mode or out is None or out.get("final_stage") is None or not order:
            return cls("label", ("label",), {"label": cfg.margin("label")})
        depth = stage_depths(out["final_stage"], order)
        secs = call_seconds(out)
        if cfg.soft_seconds is not None:
            short_max, long_min = map(float, cfg.soft_seconds)
        else:
            called = secs[np.isfinite(secs) & (secs > 0)]
            short_max, long_min = (np.quantile(called, cfg.soft_quantiles) if len(called) else (np.nan, np.nan))
        if not (depth >= 0).any():
            raise ConfigError("the outcome funnel has no known final stage on train: HPRO would get no tier labels")
        key = order.index(cfg.key_stage) if cfg.key_stage in order else None
        return cls("funnel", tuple(cfg.tiers), {t: cfg.margin(t) for t in cfg.tiers}, lock=len(order) - 1,
                   defeat=0, key=key, short_max=float(short_max), long_min=float(long_min), stage_order=order)

    @classmethod
    def for_batches(cls, train: Split, cfg: HPROParams) -> "PairSpec":
        """The pairs every LLM row's batches are composed from: all funnel tiers under the profile's
        tier definitions (``key_stage``, soft-call thresholds), whatever tiers a loss enables — so w/o
        HPRO, w/ HPRO and every ablation train on the same batches; label pairs without a funnel."""
        return cls.from_split(train, cfg.model_copy(update={"tiers": FUNNEL_TIERS}))

    def targets(self, split: Split) -> dict[str, np.ndarray]:
        """Per-lead pair supervision: ``stage_depth`` (-1 unknown) and ``call_class`` (-1 none)."""
        n = len(split)
        if self.mode == "label":
            return {"stage_depth": np.full(n, -1, np.int64), "call_class": np.full(n, -1, np.int64)}
        out = split.outcomes
        return {"stage_depth": stage_depths(out["final_stage"], self.stage_order),
                "call_class": call_classes(call_seconds(out), self.short_max, self.long_min)}

    def describe(self) -> dict[str, Any]:
        d = {"pairs": "funnel tiers" if self.mode == "funnel" else "label-only (converted over not converted)",
             "tiers": list(self.tiers), "margins": self.margins}
        return d | self.definitions()

    def definitions(self) -> dict[str, Any]:
        """The tier definitions as recorded in a result (none in label mode; no call data -> null)."""
        if self.mode != "funnel":
            return {}
        sec = lambda x: round(x, 1) if np.isfinite(x) else None  # noqa: E731
        return {"soft_call_seconds": {"short_max": sec(self.short_max), "long_min": sec(self.long_min)},
                "key_stage_depth": self.key}


def stage_depths(final_stage: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    """Final stage -> depth in the funnel (0 = shallowest); missing -> -1; unknown values are an error."""
    s = pd.Series(final_stage).reset_index(drop=True)
    depth = s.map({v: i for i, v in enumerate(order)})
    unknown = s.notna() & depth.isna()
    if unknown.any():
        if pd.api.types.is_integer_dtype(s) and s.between(0, len(order) - 1).all():
            return np.array(s.to_numpy(np.int64))  # already depths (a writable copy)
        raise ConfigError(f"final stage value(s) {sorted(map(str, s[unknown].unique()))[:5]} are not in the "
                          f"spec's final_stage_order {list(order)}: HPRO cannot build tier labels")
    return np.array(depth.fillna(-1).to_numpy(np.int64))


def call_seconds(out: pd.DataFrame) -> np.ndarray:
    col = out.get("call_seconds")
    if col is None:
        return np.full(len(out), np.nan)
    return np.array(pd.to_numeric(col, errors="coerce").to_numpy(np.float64))


def call_classes(secs: np.ndarray, short_max: float, long_min: float) -> np.ndarray:
    """-1 no call (0 s or missing), SHORT (≤ short_max), LONG (≥ long_min), MID otherwise."""
    cls = np.full(len(secs), -1, np.int64)
    called = np.isfinite(secs) & (secs > 0)
    cls[called] = MID
    cls[called & (secs <= short_max)] = SHORT
    cls[called & (secs >= long_min) & (secs > short_max)] = LONG
    return cls


@dataclass(frozen=True)
class Pairs:
    winner: np.ndarray  # batch positions
    loser: np.ndarray
    tier: np.ndarray  # index into TIERS
    margin: np.ndarray

    def __len__(self) -> int:
        return len(self.winner)

    def counts(self) -> dict[str, int]:
        return {t: int((self.tier == i).sum()) for i, t in enumerate(TIERS)}


def build_pairs(targets: Mapping[str, np.ndarray], spec: PairSpec) -> Pairs:
    """Every ordered (winner, loser) pair of the batch with its tier and margin (enabled tiers only)."""
    if spec.mode == "label":
        y = np.asarray(targets["label"])
        tier = np.where((y[:, None] == 1) & (y[None, :] == 0), TIERS.index("label"), -1)
    else:
        try:
            d, c = np.asarray(targets["stage_depth"]), np.asarray(targets["call_class"])
        except KeyError as e:  # bug (a): never fall back silently when the funnel exists
            raise KeyError(f"HPRO funnel pairs need the per-lead target {e}; the batch has {sorted(targets)}") from None
        dw, dl = d[:, None], d[None, :]
        known = (dw >= 0) & (dl >= 0)
        glob = known & (dw == spec.lock) & (dl == spec.defeat)
        key = known & (dw >= spec.key) & (dl < spec.key) if spec.key is not None else np.zeros_like(glob)
        soft = (c[:, None] == LONG) & (c[None, :] == SHORT) & (dw >= dl)
        tier = np.where(glob, 0, np.where(key, 1, np.where(soft, 2, -1)))  # the first tier that applies
    enabled = np.zeros(len(TIERS) + 1, dtype=bool)  # tier id -> enabled; id -1 (no pair) reads the last, False
    enabled[[TIERS.index(t) for t in spec.tiers]] = True
    tier = np.where(enabled[tier], tier, -1)
    w, l = np.nonzero(tier >= 0)
    t = tier[w, l]
    m = np.array([spec.margins.get(x, 0.0) for x in TIERS])[t] if len(t) else np.zeros(0)
    return Pairs(w, l, t, m.astype(np.float32))

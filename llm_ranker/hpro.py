"""HPRO: hierarchical preference ranking over the sales funnel (the second paper).

Three heads on one pooled state (:mod:`llm_ranker.model`): the LM head (QA loss),
``pointwise`` (BCE) and ``pairwise`` (preference pairs), trained with

    L = α·L_BCE + λ1·L_HPRO + λ2·L_CE,     L_HPRO = −mean log σ(s(x_w) − s(x_l) − m)

where ``s`` is the pairwise head's logit and ``m`` the pair's margin.

**Pairs** (:func:`build_pairs`) are formed *within a training batch* from the
funnel outcomes after the scoring moment (training supervision only; never a
model input; read from train/valid only). Every ordered pair (w, l) falls in at
most one tier, checked in priority order, so the tiers partition the pairs and
dropping a tier (ablation) really removes its pairs instead of moving them to
another tier:

* ``global``      — w reached the deepest stage (lock), l the shallowest (defeat); m = 1.0
* ``key_action``  — w reached ``key_stage`` (test drive) or deeper, l did not; m = 0.5
* ``soft_signal`` — w had a long call, l a short one (call seconds after scoring;
  thresholds: train-set quantiles of the leads that had a call, or fixed seconds),
  and w's funnel stage is not below l's, so no soft pair contradicts the funnel; m = 0.1
* ``label``       — the fallback where the data has no outcome funnel: converted
  over not converted, m = 1.0 (also selectable as an ablation: ``hpro.tiers=[label]``).

**Batches** (:class:`TierSampler`): the default batches (positives oversampled,
length-bucketed) are kept; then for every batch lacking a pair of an enabled
tier that exists in the training set, one pair of that tier (drawn from a pool
built on up to ``POOL_LEADS`` train leads) replaces two batch members that are
not the witness pair of a tier already present. A batch of ``B`` leads thus
holds at least one pair of every available tier (needs B ≥ 2 · tiers; else
the pair is appended), the rest of it is the usual oversampled draws. The
sampler checks its guarantee on every batch and logs how many batches it had
to top up, per tier. The loss term counts the pairs per tier that reached it.

The three bugs of the published reference implementation are impossible here:
(a) tier labels are built from the outcome columns and reach the loss — a
funnel-mode loss refuses a batch without stage depths, unknown stage values
are an error, and ``fit`` fails if an available tier got no pair in the loss;
(b) the pairwise head is trained — ``fit`` fails if its weights did not move;
(c) the scoring rule is explicit (``hpro.score``) and recorded in the result.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from benchmark.registry import MethodContext, register
from feature_store.errors import ConfigError
from feature_store.store import Split
from llm_ranker.losses import LossTerm, Targets, answer_ce, pointwise_bce
from llm_ranker.methods import AsLLR
from llm_ranker.model import RankerOutput
from llm_ranker.sampler import length_buckets, oversample
from llm_ranker.scoring import RULES

TIERS = ("global", "key_action", "soft_signal", "label")  # priority order; the index is the tier id
FUNNEL_TIERS = TIERS[:3]
SHORT, MID, LONG = 0, 1, 2  # call classes; -1 = no call after scoring / unknown
POOL_LEADS = 1500  # train leads the sampler's pool of top-up pairs is built from


# ---- the loss --------------------------------------------------------------------------------------
def hpro_loss(s_w: torch.Tensor, s_l: torch.Tensor, margin: torch.Tensor) -> torch.Tensor:
    """Margin-aware Bradley-Terry: ``−mean log σ(s_w − s_l − m)`` over the pairs (0 with no pairs)."""
    if s_w.numel() == 0:
        return s_w.sum() * 0.0  # keeps the graph; no pairs, no gradient
    return -F.logsigmoid(s_w.float() - s_l.float() - margin.float()).mean()


# ---- configuration ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class HPROConfig:
    """The profile's ``hpro:`` section."""

    tiers: tuple[str, ...] = FUNNEL_TIERS
    margins: dict[str, float] = field(default_factory=lambda: {"global": 1.0, "key_action": 0.5,
                                                               "soft_signal": 0.1, "label": 1.0})
    margin_scale: float = 1.0  # 0 = every margin 0 (ablation)
    lambda1: float = 1.0
    key_stage: str = "test_drive"
    soft_quantiles: tuple[float, float] = (0.25, 0.75)
    soft_seconds: tuple[float, float] | None = None  # explicit (short_max, long_min) instead of quantiles
    score: str = "pointwise"  # pointwise | pairwise | qa | blend

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any] | None) -> "HPROConfig":
        d = dict(d or {})
        known = {f.name for f in dataclasses.fields(cls)}
        if set(d) - known:
            raise ConfigError(f"unknown hpro.* key(s) {sorted(set(d) - known)}", hint=f"known: {sorted(known)}")
        if isinstance(d.get("tiers"), str):
            d["tiers"] = [d["tiers"]]
        for k in ("tiers", "soft_quantiles", "soft_seconds"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        if "margins" in d:
            d["margins"] = {**cls().margins, **{k: float(v) for k, v in dict(d["margins"]).items()}}
        cfg = cls(**d)
        bad = [t for t in cfg.tiers if t not in TIERS] + [t for t in cfg.margins if t not in TIERS]
        if bad or not cfg.tiers:
            raise ConfigError(f"hpro.tiers / hpro.margins: unknown or no tier(s) {bad}", hint=f"known: {list(TIERS)}")
        if "label" in cfg.tiers and len(cfg.tiers) > 1:
            raise ConfigError("hpro.tiers: 'label' (label-only pairs) cannot be mixed with funnel tiers")
        if cfg.score not in RULES:
            raise ConfigError(f"unknown scoring rule hpro.score={cfg.score}", hint=f"known: {sorted(RULES)}")
        lo, hi = cfg.soft_quantiles
        if not 0 <= lo <= hi <= 1:
            raise ConfigError(f"hpro.soft_quantiles must be 0 <= lo <= hi <= 1, got {cfg.soft_quantiles}")
        return cfg

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
    def from_split(cls, train: Split, cfg: HPROConfig) -> "PairSpec":
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
        if self.mode == "funnel":
            d["soft_call_seconds"] = {"short_max": round(self.short_max, 1), "long_min": round(self.long_min, 1)}
            d["key_stage_depth"] = self.key
        return d


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
        tier = np.select([glob, key, soft], [0, 1, 2], default=-1)
    enabled = np.array([TIERS.index(t) for t in spec.tiers])
    tier = np.where(np.isin(tier, enabled), tier, -1)
    w, l = np.nonzero(tier >= 0)
    t = tier[w, l]
    m = np.array([spec.margins.get(x, 0.0) for x in TIERS])[t] if len(t) else np.zeros(0)
    return Pairs(w, l, t, m.astype(np.float32))


class HPROTerm:
    """The λ1·L_HPRO loss term: pairs of the batch from its targets, scores from the pairwise head.

    Counts the pairs per tier that reached the loss (``counts``) and batches seen."""

    def __init__(self, spec: PairSpec):
        self.spec = spec
        self.counts = dict.fromkeys(TIERS, 0)
        self.batches = 0

    def __call__(self, out: RankerOutput, targets: Targets) -> torch.Tensor:
        s = out.heads["pairwise"]
        pairs = build_pairs({k: v.detach().cpu().numpy() for k, v in targets.items()}, self.spec)
        self.batches += 1
        for k, v in pairs.counts().items():
            self.counts[k] += v
        idx = lambda a: torch.as_tensor(a, dtype=torch.long, device=s.device)  # noqa: E731
        return hpro_loss(s[idx(pairs.winner)], s[idx(pairs.loser)],
                         torch.as_tensor(pairs.margin, device=s.device))


# ---- batches ---------------------------------------------------------------------------------------
class TierSampler:
    """Oversampled, length-bucketed batches, each topped up to hold a pair of every available tier."""

    def __init__(self, batch_size: int, pos_rate: float, window: int, spec: PairSpec):
        self.batch_size, self.pos_rate, self.window, self.spec = batch_size, pos_rate, window, spec
        self.stats: dict[str, Any] = {}

    def pools(self, targets: dict[str, np.ndarray], rng: np.random.Generator) -> dict[int, np.ndarray]:
        """Tier id -> (k, 2) train-index pairs of that tier, from up to POOL_LEADS random leads."""
        n = len(targets["label"])
        sub = np.sort(rng.choice(n, min(n, POOL_LEADS), replace=False))
        pairs = build_pairs({k: np.asarray(v)[sub] for k, v in targets.items()}, self.spec)
        pools = {}
        for i in np.unique(pairs.tier):
            sel = np.flatnonzero(pairs.tier == i)
            sel = rng.choice(sel, min(len(sel), 50_000), replace=False)
            pools[int(i)] = np.stack([sub[pairs.winner[sel]], sub[pairs.loser[sel]]], 1)
        return pools

    def batches(self, lengths: np.ndarray, targets: dict[str, np.ndarray],
                rng: np.random.Generator) -> list[np.ndarray]:
        base = length_buckets(oversample(targets["label"], self.pos_rate, rng), lengths, self.batch_size,
                              self.window, rng)
        pools = self.pools(targets, rng)
        available = sorted(pools)
        topped = dict.fromkeys(TIERS, 0)
        out = []
        for b in base:
            b = b.copy()
            pairs = build_pairs({k: np.asarray(v)[b] for k, v in targets.items()}, self.spec)
            present = set(pairs.tier.tolist())
            missing = [t for t in available if t not in present]
            if missing:
                protected = set()
                for t in present:  # keep one witness pair of every tier already in the batch
                    j = int(np.flatnonzero(pairs.tier == t)[0])
                    protected |= {int(pairs.winner[j]), int(pairs.loser[j])}
                free = [int(p) for p in rng.permutation(len(b)) if int(p) not in protected]
                extra = []
                for t in missing:
                    w, l = pools[t][rng.integers(len(pools[t]))]
                    for lead in (w, l):
                        if free:
                            b[free.pop()] = lead
                        else:
                            extra.append(lead)
                    topped[TIERS[t]] += 1
                b = np.concatenate([b, np.asarray(extra, dtype=b.dtype)])
            out.append(b)
        for b in out:  # the guarantee, checked
            have = set(build_pairs({k: np.asarray(v)[b] for k, v in targets.items()}, self.spec).tier.tolist())
            assert set(available) <= have, f"batch lacks tier(s) {set(available) - have}"
        self.stats = {"tiers_available": [TIERS[t] for t in available],
                      "tiers_unavailable": [t for t in self.spec.tiers if TIERS.index(t) not in pools],
                      "batches": len(out), "batches_topped_up_per_tier": {k: v for k, v in topped.items() if v}}
        return out


# ---- scoring rules ---------------------------------------------------------------------------------
# (registered in llm_ranker.scoring: pairwise, blend)


# ---- the method ------------------------------------------------------------------------------------
@register(name="asllr_hpro", family="llm", tables=("table1", "table2"),
          description="asLLR + HPRO: triple head (LM, pointwise, pairwise), α·BCE + λ1·margin-aware "
                      "Bradley-Terry over funnel-tier pairs + λ2·QA CE; tier-aware batches")
class AsLLRHPRO(AsLLR):
    head_names = ("pointwise", "pairwise")

    def __init__(self, ctx: MethodContext | None = None):
        super().__init__(ctx)
        self.hpro = HPROConfig.from_mapping(self.ctx.get("hpro"))
        self.cfg = self.cfg.replace(score=self.hpro.score)  # bug (c): the rule is hpro.score, explicit
        self.spec: PairSpec | None = None

    def loss_terms(self) -> list[LossTerm]:
        self.term = HPROTerm(self.spec)
        return [LossTerm("bce", self.cfg.alpha, pointwise_bce), LossTerm("hpro", self.hpro.lambda1, self.term),
                LossTerm("ce", self.cfg.lambda_ce, answer_ce)]

    def make_sampler(self) -> TierSampler:
        self.sampler = TierSampler(self.cfg.batch_size, self.cfg.pos_rate, self.cfg.bucket_batches, self.spec)
        return self.sampler

    def training_targets(self, train: Split) -> dict[str, np.ndarray]:
        return super().training_targets(train) | self.spec.targets(train)

    def fit(self, train: Split, valid: Split) -> "AsLLRHPRO":
        self.spec = PairSpec.from_split(train, self.hpro)
        super().fit(train, valid)
        self._check_training()
        return self

    def _check_training(self) -> None:
        """Bugs (a) and (b) of the reference implementation, refused at the end of every fit."""
        info = self.ranker.info
        if info.get("train_batches", 0) - info.get("resumed_from_batch", 0) <= 0:
            return  # resumed after the last batch: nothing was trained in this process
        starved = [t for t in self.sampler.stats.get("tiers_available", []) if self.term.counts[t] == 0]
        if starved:
            raise RuntimeError(f"HPRO: tier(s) {starved} exist in the training set but no pair reached the loss")
        if sum(self.term.counts.values()) and not info.get("head_update_norms", {}).get("pairwise", 0.0) > 0:
            raise RuntimeError("HPRO: the pairwise head's weights did not change in training (frozen head?)")

    def run_info(self) -> dict[str, Any]:
        return {**super().run_info(), "hpro": {**dataclasses.asdict(self.hpro), **self.spec.describe(),
                                               "pair_counts": {k: v for k, v in self.term.counts.items() if v},
                                               **self.sampler.stats}}

r"""A synthetic CRM world with a known true conversion probability.

The papers' data is proprietary, so this module generates leads of the same
shape: 31 tabular features, the *current* funnel stage at the scoring moment,
call transcripts, the outcomes after the scoring moment and the label
(order lock-in). Two worlds:

* ``benchmark`` (Table 1): table + text signal, a weak funnel signal, 1.45 % positive;
* ``industrial`` (Table 2): richer funnel signal (the current stage matters a
  lot), 1.33 % positive;
* ``textual`` (Table 3, a positive control): the text effects x 4 and the table
  effects x 0.5 of ``benchmark``, so reading the transcripts can add about 0.12
  AUC over the table-only ceiling (tests/test_world.py measures it).

A profile may rescale a world (``text_scale``, ``table_scale``, ``stage_scale``
of a dataset entry, :data:`WORLD_PARAMS`): the scales that differ from the
world's own are part of its identity (:func:`identity`), so a rescaled world
is generated anew, never confused with the world as built in.

How a lead is drawn
-------------------
1. A latent purchase intent ``z ~ N(0, 1)`` and the scoring time ``t``.
2. ``z`` (and ``t``, for drift) shape every *observable*: demographics,
   channel, behaviour counts, calls so far, the current stage, and the facts a
   customer states on a call (a deposit placed with a competitor, a fixed
   pick-up date, a financing question, ...). Facts are only observable when
   there was a call; they are rendered into the transcript with several
   paraphrases, and ASR noise touches only greetings and small talk, never the
   line that states a fact.
3. The label depends on the observables only::

       logit = h(x_obs, t) + eps,     eps ~ N(0, sigma^2) independent of x_obs and z
       y     = 1[U < sigmoid(logit)]

   ``h = intercept + h_table + h_text``: ``h_text`` is the part that comes from
   facts stated only in the transcripts; ``h_table`` is partly non-linear
   (model x age, a channel effect that drifts over the year, advisor/store
   random effects) and includes the current stage and time.
4. The outcome funnel (deepest stage reached after scoring, call seconds after
   scoring) is drawn *after* the label and consistent with it: ``y = 1`` if and
   only if the final stage is ``lock``. The funnel runs forward: the final stage
   is never shallower than the engagement already shown at the scoring moment,

   ==============  ===================  ==============================
   current stage   minimum final stage  final stage when ``y = 0``
   ==============  ===================  ==============================
   new             defeat               defeat, call, visit, test_drive
   contacted       call                 call, visit, test_drive
   visited         visit                visit, test_drive
   test_drive      test_drive           test_drive
   ==============  ===================  ==============================

   A lead that does not lock reaches the deeper of its current stage and a
   drawn depth (deeper for larger ``h``). Outcomes are HPRO's training
   supervision, never model inputs.

Two oracles
-----------
Let ``X`` be everything observable at the scoring moment (features, stage,
transcript, time). Because ``eps`` is independent of ``(X, z)`` and the label
depends on ``z`` only through ``X``::

    p_true = P(y = 1 | X) = E_eps[ sigmoid(h(X) + eps) ]
           = 1/sqrt(pi) * sum_k w_k * sigmoid(h(X) + sqrt(2) * sigma * x_k)

with Gauss-Hermite nodes ``x_k`` and weights ``w_k`` (40 nodes: the error of
the quadrature is far below 1e-9 here). No model — not even one given the
latent intent ``z`` — can rank better in expectation.

``p_true_table`` is the same probability given everything *except* the text,
``X_T`` (features, stage, time): the stated facts ``F`` are integrated out.
Given ``z`` the facts are independent of each other and of ``X_T``, so::

    p_true_table = sum_F  P(F | X_T) * s(h_table + h_text(F)),
    P(F | X_T)   = integral P(F | z) p(z | X_T) dz,

with ``s(x) = E_eps[sigmoid(x + eps)]`` and ``p(z | X_T)`` proportional to the
prior times the likelihood of every tabular observable that depends on ``z``
(income, the behaviour counts through their shared activity level, calls,
days since activity, the stage, call seconds so far). The integral is a sum
over a uniform grid of ``z`` (step 0.4 against a posterior sd of at least
~0.5: the trapezoid rule is exponentially accurate here, agreeing with a 20x
finer grid to 1e-13); the activity level is integrated on a finer grid inside
the count likelihood. A lead without calls states no facts,
so its two oracles coincide. The gap between the oracles is the most any text
reader can gain.

Random streams
--------------
Every draw comes from a stream keyed by the world's name (a stable SHA-256
hash, not Python's salted ``hash``), the seed and a purpose: the world's fixed
parts (cities, advisors, ...) and its intercept calibration from ``(name,
seed)``; the leads from ``(name, seed, number of leads, block)``, one stream
per block of ``BLOCK`` leads. So two worlds never share a lead, a larger world
does not contain a smaller one, a rescaled world has the same leads as its
world with other labels (a text-strength sweep compares like with like), and the data do not depend on how blocks are
grouped into Parquet files. The same arguments give byte-identical files.
The intercept of ``h`` is calibrated on a pilot sample so the expected
positive rate equals the target. Generation streams blocks to Parquet: memory
stays flat in the number of leads.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from scipy.special import gammainc, gammaln, ndtr

from feature_store.errors import ConfigError
from feature_store.files import atomic_path
from feature_store.spec import DatasetSpec, Features, Generator, Outcomes, SplitSpec

GENERATOR = "leadrank-synthetic"
GENERATOR_VERSION = 2  # bump whenever the same (world, leads, seed) would give different data
BLOCK = 4096  # leads per random stream: part of what the data are
CHUNK = 16 * BLOCK  # leads per Parquet file (does not change the data)
START = np.datetime64("2024-01-01T00:00:00", "s")
DAYS = 365
STAGES = ("new", "contacted", "visited", "test_drive")
FINAL_STAGES = ("defeat", "call", "visit", "test_drive", "lock")

GENDERS = ("male", "female")
INCOMES = ("low", "lower_mid", "mid", "upper_mid", "high")
EDUCATION = ("secondary", "vocational", "bachelor", "master_plus")
MARITAL = ("single", "married", "divorced")
CHANNELS = ("app", "website", "douyin_live", "dealer_walkin", "referral", "auto_portal", "wechat", "event")
DEVICES = ("ios", "android", "pc")
MODELS = ("Aurora S", "Aurora X", "Zephyr", "Zephyr Max", "Volt Mini", "Volt GT")
MODEL_PRICE_K = np.array([220.0, 300.0, 180.0, 260.0, 110.0, 160.0])
TRIMS = ("standard", "long_range", "performance")
COMPETITORS = ("Tesla Model Y", "BYD Song", "Xpeng G6", "Li Auto L6", "NIO ES6", "Zeekr 7X")
N_CITIES, N_PROVINCES, N_CAMPAIGNS, N_STORES, N_ADVISORS = 300, 31, 60, 300, 1500


@dataclass(frozen=True)
class WorldConfig:
    """Signal strengths of one world (scales multiply the effects in ``h``).

    ``text_scale = 0`` switches the text effects off: the facts are still
    stated in the transcripts but no longer move the label, so the two oracles
    agree.
    """

    name: str
    target_rate: float
    table_scale: float
    text_scale: float
    stage_scale: float
    sigma: float = 0.8  # sd of the unobservable noise eps


WORLDS = {
    "benchmark": WorldConfig("benchmark", target_rate=0.0145, table_scale=1.0, text_scale=1.0, stage_scale=0.25),
    "industrial": WorldConfig("industrial", target_rate=0.0133, table_scale=0.9, text_scale=0.7, stage_scale=1.0),
    # The positive control: benchmark's shape, text x 4, table x 0.5 (oracle ~0.99, table-only oracle ~0.87).
    "textual": WorldConfig("textual", target_rate=0.0145, table_scale=0.5, text_scale=4.0, stage_scale=0.25),
}
WORLD_PARAMS = ("text_scale", "table_scale", "stage_scale")  # what a profile's dataset entry may rescale


def world_config(world: str, params: Mapping[str, float] | None = None) -> WorldConfig:
    """The built-in world ``world`` with ``params`` (a subset of :data:`WORLD_PARAMS`) replacing its own."""
    if world not in WORLDS:
        raise ConfigError(f"unknown world '{world}'", hint=f"choose one of {sorted(WORLDS)}")
    unknown = sorted(set(params or {}) - set(WORLD_PARAMS))
    if unknown:
        raise ConfigError(f"unknown world parameter(s) {unknown}", hint=f"known: {', '.join(WORLD_PARAMS)}")
    return dataclasses.replace(WORLDS[world], **{k: float(v) for k, v in (params or {}).items()})


# ---------------------------------------------------------------------------
# E_eps[sigmoid(x + eps)]
# ---------------------------------------------------------------------------
_GH_X, _GH_W = np.polynomial.hermite.hermgauss(40)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def p_true_from_logit(h: np.ndarray, sigma: float) -> np.ndarray:
    """E_eps[sigmoid(h + eps)], eps ~ N(0, sigma^2), by Gauss-Hermite quadrature."""
    nodes = h[:, None] + math.sqrt(2.0) * sigma * _GH_X[None, :]
    return (sigmoid(nodes) @ _GH_W) / math.sqrt(math.pi)


_SMOOTH_LO, _SMOOTH_STEP, _SMOOTH_CELLS = -60.0, 0.01, 9000


@cache
def _smoothed_sigmoid(sigma: float) -> tuple[np.ndarray, ...]:
    """Cubic Hermite interpolation of ``p_true_from_logit`` on [-60, 30]: per cell, the
    coefficients c0..c3 of the cubic in the position t in [0, 1) within the cell."""
    x = _SMOOTH_LO + _SMOOTH_STEP * np.arange(_SMOOTH_CELLS + 1)
    nodes = sigmoid(x[:, None] + math.sqrt(2.0) * sigma * _GH_X[None, :])
    f = (nodes @ _GH_W) / math.sqrt(math.pi)
    d = _SMOOTH_STEP * ((nodes * (1.0 - nodes)) @ _GH_W) / math.sqrt(math.pi)
    f0, f1, d0, d1 = f[:-1], f[1:], d[:-1], d[1:]
    return f0, d0, 3 * (f1 - f0) - 2 * d0 - d1, 2 * (f0 - f1) + d0 + d1


def _p_true_interpolated(h: np.ndarray, sigma: float) -> np.ndarray:
    """``p_true_from_logit`` to ~1e-11 at a fraction of the cost (for the many fact combinations)."""
    c0, c1, c2, c3 = _smoothed_sigmoid(sigma)
    u = np.clip((h - _SMOOTH_LO) / _SMOOTH_STEP, 0.0, _SMOOTH_CELLS - 1e-9)
    cell = u.astype(np.intp)
    t = u - cell
    p = c3[cell]  # Horner, in place
    for c in (c2, c1, c0):
        p *= t
        p += c[cell]
    return p


# ---------------------------------------------------------------------------
# Random streams
# ---------------------------------------------------------------------------
ENTITIES, PILOT, LEADS = 0, 1, 2  # purposes of a stream


def _stream(world: str, seed: int, purpose: int, leads: int = 0, block: int = 0) -> np.random.Generator:
    """An independent stream for (world name, seed, purpose, world size, block)."""
    name_key = int.from_bytes(hashlib.sha256(world.encode()).digest()[:8], "little")
    return np.random.default_rng(np.random.SeedSequence([name_key, seed], spawn_key=(purpose, leads, block)))


# ---------------------------------------------------------------------------
# Entities shared by all leads of a world (cities, advisors, ...)
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entities:
    city_province: np.ndarray
    city_tier: np.ndarray
    city_weight: np.ndarray
    campaign_channel: np.ndarray
    store_effect: np.ndarray
    advisor_store: np.ndarray
    advisor_effect: np.ndarray
    tier_effect: np.ndarray
    channel_effect: np.ndarray


def _entities(rng: np.random.Generator) -> Entities:
    city_w = 1.0 / np.arange(1, N_CITIES + 1) ** 0.8
    return Entities(
        city_province=rng.integers(0, N_PROVINCES, N_CITIES),
        # the most populous cities are tier 1, the long tail tier 5
        city_tier=np.searchsorted([4, 20, 60, 150], np.arange(N_CITIES), side="right") + 1,
        city_weight=city_w / city_w.sum(),
        campaign_channel=rng.integers(0, len(CHANNELS), N_CAMPAIGNS),
        store_effect=rng.normal(0, 0.30, N_STORES),
        advisor_store=rng.integers(0, N_STORES, N_ADVISORS),
        advisor_effect=rng.normal(0, 0.40, N_ADVISORS),
        tier_effect=np.array([0.0, 0.35, 0.2, 0.0, -0.2, -0.4]),  # index by tier 1..5
        channel_effect=np.array([0.3, 0.0, -0.3, 0.6, 0.5, -0.2, 0.1, 0.2]),
    )


# ---------------------------------------------------------------------------
# How the latent intent z shapes the observables. The sampler and the
# posterior of z (for p_true_table) both read these constants.
# ---------------------------------------------------------------------------
INCOME_SLOPE, INCOME_CUTS = 0.35, np.array([-1.2, -0.4, 0.4, 1.2])  # income = digitize(0.35 z + N(0,1), cuts)
ACTIVITY_SLOPE, ACTIVITY_SD = 0.6, 0.8  # activity a = 0.6 z + N(0, 0.8^2)
# Behaviour counts ~ Poisson(exp(mu + slope * a)); a 30-day count = its 7-day count + such an increment.
COUNTS = {"app_opens_7d": (0.6, 0.7), "app_opens_30d": (1.2, 0.6), "web_visits_7d": (0.3, 0.5),
          "web_visits_30d": (0.9, 0.5), "configurator": (-0.6, 0.9), "price_views": (-0.3, 0.8),
          "video_views": (0.2, 0.3), "brochures": (-1.5, 0.6)}
INCREMENT_OF = {"app_opens_30d": "app_opens_7d", "web_visits_30d": "web_visits_7d"}
CALLS_MU, CALLS_SLOPE, CALLS_MAX = -0.2, 0.35, 6  # calls = min(Poisson(exp(mu + slope z) * r(days)), 6)
IDLE_MU, IDLE_SLOPE = 1.6, -0.5  # days since activity = min(floor(Exponential(exp(mu + slope z))), days since created)
STAGE_SLOPE, STAGE_PER_CALL, STAGE_CUTS = 0.9, 0.8, np.array([0.6, 2.2, 3.4])
TALK_MU, TALK_SLOPE, TALK_SD = 0.7, 0.3, 0.5  # call seconds so far = round(calls * 60 * exp(mu + slope z + N(0, sd^2)))


def _call_rate_factor(days_since_created: np.ndarray) -> np.ndarray:
    """Older leads have had more time to be called (saturates after 30 days)."""
    return 0.4 + np.minimum(days_since_created, 30) / 15


@dataclass(frozen=True)
class Fact:
    """A fact a customer may state on a call: how likely, what it does to ``h``, how it is said."""

    key: str
    base: float  # P(stated | z, a call happened) = sigmoid(base + slope * z)
    slope: float
    effect: tuple[float, ...]  # effect on h_text, by income band
    templates: tuple[str, str]
    needs_car: bool = False


def _flat(effect: float) -> tuple[float, ...]:
    return (effect,) * len(INCOMES)


FACTS = (
    Fact("f_competitor_deposit", -2.6, -0.9, _flat(-2.2),
         ("Customer: Honestly I already paid a deposit for the {competitor} last week.",
          "Customer: I put down a deposit on a {competitor} already, so probably not.")),
    Fact("f_pickup_date", -2.8, 1.0, _flat(1.6),
         ("Customer: I need to pick up the car on the {day}, that date is fixed.",
          "Customer: We have fixed the pick-up date, it has to be the {day}.")),
    Fact("f_financing", -1.1, 0.0, (-0.6, 1.2, 1.0, 0.0, 0.0),  # financing x income
         ("Customer: Can I pay in instalments? What are the financing options?",
          "Customer: I would need a car loan, what interest rate do you offer on financing?")),
    Fact("f_price_objection", -1.0, -0.5, _flat(-0.5),
         ("Customer: To be honest the price is too high for me.",
          "Customer: That is more expensive than I expected, the price is a problem.")),
    Fact("f_test_drive_booked", -2.2, 0.8, _flat(0.9),
         ("Customer: Yes, book me a test drive this Saturday morning.",
          "Customer: Please confirm my test drive appointment for the weekend.")),
    Fact("f_spouse", -1.6, 0.0, _flat(-0.4),
         ("Customer: I need to discuss it with my wife first.",
          "Customer: My husband has to agree before we decide anything.")),
    Fact("f_trade_in", -0.6, 0.0, _flat(0.3),
         ("Customer: Can I trade in my current car? It is about {car_age} years old.",
          "Customer: I want to trade in my old car as part of the deal."), needs_car=True),
)
FACT_EFFECTS = np.array([f.effect for f in FACTS]).T  # (income band, fact)


# ---------------------------------------------------------------------------
# Observables
# ---------------------------------------------------------------------------
def _observables(rng: np.random.Generator, n: int, ent: Entities) -> dict[str, np.ndarray]:
    """Draw the latent intent, time and every observable column (codes, not strings)."""
    z = rng.normal(size=n)
    frac_year = rng.random(n)  # position of the scoring moment in the year
    seconds = np.floor(frac_year * DAYS * 86400).astype(np.int64)
    o: dict[str, np.ndarray] = {"z": z, "frac_year": frac_year, "seconds": seconds}

    o["age"] = np.round(21 + 45 * rng.beta(2.2, 3.5, n)).astype(np.int64)
    o["gender"] = (rng.random(n) < 0.38).astype(int)
    o["income"] = np.digitize(INCOME_SLOPE * z + rng.normal(size=n), INCOME_CUTS)
    o["education"] = np.clip(o["income"] // 2 + rng.integers(-1, 2, n), 0, 3)
    o["marital"] = np.where(o["age"] < 28, rng.choice(3, n, p=[.7, .27, .03]), rng.choice(3, n, p=[.2, .7, .1]))
    o["children"] = (rng.random(n) < np.where(o["marital"] == 1, 0.65, 0.12)).astype(int)

    o["city"] = rng.choice(N_CITIES, n, p=ent.city_weight)
    # Drift: live-stream leads grow over the year, walk-ins shrink.
    base = np.array([0.16, 0.16, 0.10, 0.12, 0.08, 0.18, 0.12, 0.08])
    shift = np.array([0, 0, 0.16, -0.08, 0, -0.06, 0, -0.02])
    p = base[None, :] + frac_year[:, None] * shift[None, :]
    o["channel"] = (rng.random(n)[:, None] > np.cumsum(p / p.sum(1, keepdims=True), 1)).sum(1)
    camp = rng.integers(0, N_CAMPAIGNS, n)
    for _ in range(3):  # campaigns belong to a channel: redraw mismatches a few times
        bad = ent.campaign_channel[camp] != o["channel"]
        camp[bad] = rng.integers(0, N_CAMPAIGNS, bad.sum())
    o["campaign"] = camp
    o["device"] = rng.choice(3, n, p=[0.4, 0.45, 0.15])

    o["model"] = np.where(o["age"] < 32, rng.choice(6, n, p=[.1, .05, .15, .1, .35, .25]),
                          rng.choice(6, n, p=[.22, .2, .2, .18, .08, .12]))
    o["trim"] = np.clip(np.digitize(0.5 * o["income"] + rng.normal(size=n), [1.0, 2.4]), 0, 2)
    o["budget_k"] = np.round(MODEL_PRICE_K[o["model"]] * np.exp(0.25 * (o["income"] - 2) / 2
                                                               + rng.normal(0, 0.2, n)), 1)
    o["has_car"] = (rng.random(n) < 0.55).astype(int)
    o["car_age"] = np.where(o["has_car"] == 1, np.round(rng.gamma(2.0, 2.5, n), 1), np.nan)

    activity = ACTIVITY_SLOPE * z + rng.normal(0, ACTIVITY_SD, n)
    for key, (mu, slope) in COUNTS.items():
        o[key] = rng.poisson(np.exp(mu + slope * activity))
    for total, week in INCREMENT_OF.items():
        o[total] += o[week]

    o["days_since_created"] = np.floor(rng.exponential(12.0, n)).astype(np.int64)
    rate = np.exp(CALLS_MU + CALLS_SLOPE * z) * _call_rate_factor(o["days_since_created"])
    o["calls"] = np.minimum(rng.poisson(rate), CALLS_MAX)
    idle = np.floor(rng.exponential(np.exp(IDLE_MU + IDLE_SLOPE * z)))
    o["days_since_activity"] = np.minimum(idle, o["days_since_created"]).astype(np.int64)
    o["advisor"] = rng.integers(0, N_ADVISORS, n)

    stage_latent = STAGE_SLOPE * z + STAGE_PER_CALL * np.minimum(o["calls"], 3) + rng.normal(0, 1, n)
    stage = np.digitize(stage_latent, STAGE_CUTS)
    has_call = o["calls"] > 0
    o["stage"] = np.where(has_call, np.maximum(stage, 1), 0)  # no call yet: 'new'

    for f in FACTS:
        stated = (rng.random(n) < sigmoid(f.base + f.slope * z)) & has_call
        o[f.key] = stated & (o["has_car"] == 1) if f.needs_car else stated
    o["competitor"] = rng.integers(0, len(COMPETITORS), n)
    talk = o["calls"] * 60 * np.exp(TALK_MU + TALK_SLOPE * z + rng.normal(0, TALK_SD, n))
    o["call_seconds_so_far"] = np.where(has_call, np.round(talk), 0).astype(np.int64)
    return o


def _facts(o: dict[str, np.ndarray]) -> np.ndarray:
    """(n, fact) booleans: which facts each lead stated."""
    return np.column_stack([o[f.key] for f in FACTS])


def _logit_parts(o: dict[str, np.ndarray], ent: Entities, w: WorldConfig) -> tuple[np.ndarray, np.ndarray]:
    """``(h_table, h_text)``: h without its intercept, split by where the signal is observable."""
    table = (0.45 * np.log1p(o["configurator"]) + 0.35 * np.log1p(o["price_views"])
             + 0.20 * np.log1p(o["app_opens_7d"]) + 0.10 * np.log1p(o["brochures"])
             - 0.35 * np.log1p(o["days_since_activity"])
             + 0.25 * np.log1p(o["call_seconds_so_far"] / 60.0)
             + ent.channel_effect[o["channel"]]
             + np.where(o["channel"] == 2, 1.2 * o["frac_year"] - 0.4, 0.0)  # drifting live-stream quality
             + ent.tier_effect[ent.city_tier[o["city"]]]
             + ent.advisor_effect[o["advisor"]] + ent.store_effect[ent.advisor_store[o["advisor"]]]
             + np.where(o["model"] == 4, np.where(o["age"] < 30, 0.6, np.where(o["age"] > 50, -0.6, 0.0)), 0.0)
             - 0.8 * np.clip(np.log(MODEL_PRICE_K[o["model"]] / o["budget_k"]), 0, None)
             + 0.25 * (o["has_car"] == 1) * (np.nan_to_num(o["car_age"]) > 6))
    stage = np.array([0.0, 0.6, 1.5, 2.4])[o["stage"]]
    drift = -0.3 * o["frac_year"]
    h_table = w.table_scale * table + w.stage_scale * stage + drift
    h_text = w.text_scale * np.sum(_facts(o) * FACT_EFFECTS[o["income"]], axis=1)
    return h_table, h_text


# ---------------------------------------------------------------------------
# The posterior of z given the table, and the table-only oracle
# ---------------------------------------------------------------------------
def _log_prob_between(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """log(Phi(hi) - Phi(lo)), accurate in both tails."""
    upper = lo > 0  # both in the upper tail: Phi(-lo) - Phi(-hi) keeps the digits
    lo, hi = np.where(upper, -hi, lo), np.where(upper, -lo, hi)
    with np.errstate(divide="ignore"):
        return np.log(ndtr(hi) - ndtr(lo))


class _TablePosterior:
    """p(z | tabular observables) on a uniform grid of z, and from it ``p_true_table``.

    Every z-dependent tabular observable contributes its exact likelihood. The
    eight behaviour counts share the activity level ``a``; their log-likelihood
    in ``a`` is ``m/10 * a - G(a) + const`` with ``m = sum 10*slope_k*count_k``
    (an integer: slopes are multiples of 0.1) and ``G`` fixed, so their
    likelihood in ``z`` is tabulated once per ``m``, integrating ``a`` on a
    finer grid.
    """

    Z = np.linspace(-8.0, 8.0, 41)  # posterior sd stays above ~0.45: trapezoid error below 1e-12
    A = np.linspace(-10.0, 10.0, 1001)  # activity grid; the count likelihood in a is as narrow as sd ~0.1

    def __init__(self) -> None:
        z, inf = self.Z[None, :], np.array([[-np.inf], [np.inf]])
        cuts = np.concatenate([inf[:1], INCOME_CUTS[:, None], inf[1:]])
        self.log_prior = -0.5 * self.Z ** 2
        self.log_income = _log_prob_between(cuts[:-1] - INCOME_SLOPE * z, cuts[1:] - INCOME_SLOPE * z)
        # calls | z, min(days since created, 30): Poisson censored at CALLS_MAX
        lam = np.exp(CALLS_MU + CALLS_SLOPE * z)[None] * _call_rate_factor(np.arange(31))[:, None, None]
        c = np.arange(CALLS_MAX + 1)[None, :, None]
        self.log_calls = np.where(c < CALLS_MAX, c * np.log(lam) - lam - gammaln(c + 1),
                                  np.log(gammainc(CALLS_MAX, lam)))
        # stage | z, min(calls, 3), for leads with a call (stage >= 1)
        mean = STAGE_SLOPE * z + STAGE_PER_CALL * np.arange(4)[:, None]
        bounds = [-np.inf, STAGE_CUTS[1], STAGE_CUTS[2], np.inf]  # 'contacted' absorbs latent < 2.2
        self.log_stage = np.stack([np.full_like(mean, -np.inf)] + [
            _log_prob_between(bounds[s - 1] - mean, bounds[s] - mean) for s in (1, 2, 3)], axis=1)
        # days since activity: floor of an exponential with mean exp(IDLE_MU + IDLE_SLOPE z)
        inv_mean = np.exp(-(IDLE_MU + IDLE_SLOPE * self.Z))
        self.idle_per_day, self.idle_not_censored = -inv_mean, np.log(-np.expm1(-inv_mean))
        # facts | z for a lead with a call, every combination F, without / with a current car
        self.combos = (np.arange(2 ** len(FACTS))[:, None] >> np.arange(len(FACTS))) & 1  # (combo, fact)
        q = sigmoid(np.array([f.base for f in FACTS])[:, None] + np.array([f.slope for f in FACTS])[:, None] * z)
        self.p_facts = np.stack([self._combo_probs(q * np.where([f.needs_car for f in FACTS], car, 1)[:, None])
                                 for car in (0, 1)])  # (car, z, combo)
        self.combo_text = self.combos @ FACT_EFFECTS.T  # (combo, income band): h_text / text_scale
        # behaviour counts: log-likelihood in z per m, grown on demand
        mus = np.array([mu for mu, _ in COUNTS.values()])
        self.tenths = np.rint(10 * np.array([s for _, s in COUNTS.values()])).astype(np.int64)
        self.G = np.exp(mus[:, None] + self.tenths[:, None] / 10 * self.A[None, :]).sum(0)
        self.kernel = np.exp(-0.5 * ((self.A[:, None] - ACTIVITY_SLOPE * z) / ACTIVITY_SD) ** 2)
        self.log_counts = np.zeros((0, len(self.Z)))

    def _combo_probs(self, q: np.ndarray) -> np.ndarray:
        """P(F = combo | z), shape (z, combo), from per-fact probabilities q (fact, z)."""
        stated = self.combos[:, :, None] == 1
        return np.prod(np.where(stated, q[None], 1.0 - q[None]), axis=1).T

    def _count_term(self, m: np.ndarray) -> np.ndarray:
        if m.max() >= len(self.log_counts):  # extend the table up to the largest m seen
            new = np.arange(len(self.log_counts), max(2 * len(self.log_counts), m.max() + 1))
            g = new[:, None] / 10 * self.A[None, :] - self.G[None, :]
            integral = np.exp(g - g.max(1, keepdims=True)) @ self.kernel  # constant factors per m cancel
            with np.errstate(divide="ignore"):
                self.log_counts = np.concatenate([self.log_counts, np.log(integral)])
        return self.log_counts[m]

    def posterior(self, o: dict[str, np.ndarray]) -> np.ndarray:
        """(n, len(Z)) weights of z given the tabular observables of leads that had a call."""
        calls, created = o["calls"], o["days_since_created"]
        m = sum(t * (o[k] - o[INCREMENT_OF[k]] if k in INCREMENT_OF else o[k])
                for k, t in zip(COUNTS, self.tenths))
        idle, seconds = o["days_since_activity"], o["call_seconds_so_far"]
        with np.errstate(divide="ignore"):  # round(x) = 0 means x < 0.5: the lower edge is log(0)
            edges = np.log(np.maximum(seconds[:, None] + [-0.5, 0.5], 0.0) / (60.0 * calls[:, None])) - TALK_MU
        talk_mean = TALK_SLOPE * self.Z[None, :]
        log_post = (self.log_prior + self.log_income[o["income"]] + self._count_term(m)
                    + self.log_calls[np.minimum(created, 30), calls]
                    + self.log_stage[np.minimum(calls, 3), o["stage"]]
                    + idle[:, None] * self.idle_per_day + (idle < created)[:, None] * self.idle_not_censored
                    + _log_prob_between((edges[:, :1] - talk_mean) / TALK_SD, (edges[:, 1:] - talk_mean) / TALK_SD))
        post = np.exp(log_post - log_post.max(1, keepdims=True))
        return post / post.sum(1, keepdims=True)

    def p_true_table(self, o: dict[str, np.ndarray], h_table: np.ndarray, w: WorldConfig) -> np.ndarray:
        """P(y = 1 | table) for leads that had a call: the stated facts summed out."""
        post, car = self.posterior(o), o["has_car"] == 1
        p_combo = np.empty((len(post), self.combos.shape[0]))
        p_combo[car], p_combo[~car] = post[car] @ self.p_facts[1], post[~car] @ self.p_facts[0]
        logits = h_table[:, None] + w.text_scale * self.combo_text[:, o["income"]].T
        return np.sum(p_combo * _p_true_interpolated(logits, w.sigma), axis=1)


# ---------------------------------------------------------------------------
# Outcomes after the scoring moment
# ---------------------------------------------------------------------------
def _outcomes(rng: np.random.Generator, h: np.ndarray, y: np.ndarray, stage: np.ndarray,
              h_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Deepest stage reached and call seconds after scoring, drawn after (and consistent with) y.

    Current stage i (new, contacted, visited, test_drive) is final stage i at
    least (defeat, call, visit, test_drive). A lead that does not lock reaches
    the deeper of its current stage and a drawn depth (deeper for larger h);
    y = 1 is lock.
    """
    u = (h - h_mean) + rng.logistic(0, 1, len(h))
    drawn = np.digitize(u, [0.0, 1.3, 2.6])  # 0 defeat, 1 call, 2 visit, 3 test_drive
    final = np.where(y == 1, FINAL_STAGES.index("lock"), np.maximum(stage, drawn))
    talk = np.exp(np.log(90) + 0.45 * (h - h_mean) + 0.6 * (final >= 2) + rng.normal(0, 0.7, len(h)))
    seconds = np.where(final == 0, 0, np.round(talk)).astype(np.int64)
    return final, seconds


# ---------------------------------------------------------------------------
# Transcripts: every line is a sequence of pieces from one pool of strings
# ---------------------------------------------------------------------------
GREETINGS_A = ("Hello, this is {adv} from the {model} showroom, is now a good time?",
               "Hi, {adv} here calling about your interest in the {model}.",
               "Good afternoon, I'm {adv}, your sales advisor for the {model}.")
GREETINGS_C = ("Yes, hi.", "Uh, yes, go ahead.", "Sure, I have a few minutes.", "Hello? Yes, I can talk.")
SMALL_TALK = (
    ("Advisor", "The {model} has a range of about five hundred kilometres on the standard battery."),
    ("Customer", "Okay, and how long does charging take at home?"),
    ("Advisor", "With a wall box it is about seven hours from empty, most people charge overnight."),
    ("Customer", "Right, right. And the warranty on the battery?"),
    ("Advisor", "Eight years or one hundred sixty thousand kilometres on the battery pack."),
    ("Customer", "Hmm, I saw some videos online about the interior."),
    ("Advisor", "We also have a new colour this season, a dark green that people like a lot."),
    ("Customer", "What about the software updates, are they free?"),
    ("Advisor", "Yes, over-the-air updates are included for the life of the car."),
    ("Customer", "My commute is about forty kilometres a day, mostly highway."),
    ("Advisor", "That is well within range, you would charge maybe twice a week."),
    ("Customer", "Is there a waiting list right now?"),
    ("Advisor", "The store is open until nine on weekdays if you want to come by."),
    ("Customer", "Let me think about it, I'm still comparing a few options."),
    ("Advisor", "Of course, I can send you the brochure and the price list on WeChat."),
    ("Customer", "Sure, send it over, I'll take a look tonight."),
    ("Advisor", "Do you have any questions about the driver assistance features?"),
    ("Customer", "Not really, I mostly care about space for the family."),
    ("Advisor", "The rear seats fold flat, the boot is about six hundred litres."),
    ("Customer", "Okay. Okay, that sounds fine."),
)
CLOSINGS = ("Advisor: Thank you for your time, have a nice day.", "Customer: Thanks, bye.")
ADVISOR_NAMES = ("Li Wei", "Zhang Min", "Wang Fang", "Chen Jie", "Liu Yang", "Zhao Lei", "Huang Ying", "Zhou Tao")
DAY_NAMES = ("15th", "20th", "first of next month", "end of this month", "28th")
FACT_VALUES = ("competitor", "day", "car_age")  # the placeholders a fact template may hold
OLDEST_CALL_DAYS = 1000  # calls up to this many days before the scoring year have a date piece


@dataclass(frozen=True)
class _Pieces:
    """Every string a transcript is made of, stored once, and the ids that assemble lines.

    A line is a row of piece ids: a call header, a fact line (text before the
    value, the value, text after it), a closing, or a noisy line (speaker, one
    piece per word form, "[inaudible]"). Noisy lines are the greetings and
    small talk with advisor name and model filled in; each word has three forms
    (as said, "uh " + word, ending clipped), each with and without a leading space.
    """

    strings: pa.Array
    newline: int
    blank_line: int
    inaudible: int
    header: tuple[int, int, int]  # "[call ", " on ", "]"
    number: np.ndarray  # str(i)
    date: np.ndarray  # str(day), day 0 = OLDEST_CALL_DAYS before START
    closing: np.ndarray
    speaker: np.ndarray  # (noisy line,) "Advisor: " or "Customer: "
    words: np.ndarray  # (noisy line, word) vocabulary ids, -1 = padding
    forms: np.ndarray  # (vocabulary id, form, leading space)
    greeting_a: np.ndarray  # (template, advisor name, model) -> noisy line
    greeting_c: np.ndarray  # (template,) -> noisy line
    small_talk: np.ndarray  # (template, model) -> noisy line
    fact_text: np.ndarray  # (fact, template, before/after value)
    fact_value: np.ndarray  # (fact, template): 1 + index in FACT_VALUES, 0 = none
    values: tuple[np.ndarray, ...]  # pieces of each kind of value, in FACT_VALUES order


@cache
def _pieces() -> _Pieces:
    pool: dict[str, int] = {}

    def piece(text: str) -> int:
        return pool.setdefault(text, len(pool))

    vocabulary: dict[str, int] = {}
    noisy: list[tuple[int, list[int]]] = []

    def noisy_line(speaker: str, text: str) -> int:
        noisy.append((piece(f"{speaker}: "), [vocabulary.setdefault(w, len(vocabulary)) for w in text.split(" ")]))
        return len(noisy) - 1

    greeting_a = np.array([[[noisy_line("Advisor", t.format(adv=a, model=m)) for m in MODELS]
                            for a in ADVISOR_NAMES] for t in GREETINGS_A])
    greeting_c = np.array([noisy_line("Customer", t) for t in GREETINGS_C])
    small_talk = np.array([[noisy_line(s, t.format(model=m)) for m in MODELS] for s, t in SMALL_TALK])
    words = np.full((len(noisy), max(len(w) for _, w in noisy)), -1, dtype=np.int32)
    for i, (_, ids) in enumerate(noisy):
        words[i, :len(ids)] = ids
    forms = np.array([[[piece(lead + f) for lead in ("", " ")] for f in (w, "uh " + w, w[:-1] if len(w) > 3 else w)]
                      for w in vocabulary])

    fact_text = np.zeros((len(FACTS), 2, 2), dtype=np.int64)
    fact_value = np.zeros((len(FACTS), 2), dtype=np.int64)
    for i, f in enumerate(FACTS):
        for j, template in enumerate(f.templates):
            before, key, after = (re.split(r"\{(\w+)\}", template) + ["", ""])[:3]
            fact_text[i, j] = piece(before), piece(after)
            fact_value[i, j] = FACT_VALUES.index(key) + 1 if key else 0
    number = np.array([piece(str(i)) for i in range(1000)])
    first_day = (START.astype("datetime64[D]") - np.timedelta64(OLDEST_CALL_DAYS, "D"))
    date = np.array([piece(str(first_day + d)) for d in range(OLDEST_CALL_DAYS + DAYS + 1)])
    return _Pieces(
        newline=piece("\n"), blank_line=piece("\n\n"), inaudible=piece(" [inaudible]"),
        header=(piece("[call "), piece(" on "), piece("]")), number=number, date=date,
        closing=np.array([piece(c) for c in CLOSINGS]), speaker=np.array([s for s, _ in noisy]), words=words,
        forms=forms, greeting_a=greeting_a, greeting_c=greeting_c, small_talk=small_talk,
        fact_text=fact_text, fact_value=fact_value,
        values=(np.array([piece(c) for c in COMPETITORS]), np.array([piece(d) for d in DAY_NAMES]), number),
        strings=pa.array(list(pool), type=pa.string()))


def _transcripts(rng: np.random.Generator, o: dict[str, np.ndarray], score_day: np.ndarray) -> pa.Array:
    """One transcript per lead: its calls oldest first, blank-line separated; '' without calls.

    A call: a dated header, the advisor's and the customer's greeting, a
    long-tailed number of small-talk lines with the facts stated on this call
    at random places among them, and up to two closing lines. ASR noise (per
    lead rate) drops, prefixes ("uh") or clips words of greetings and small
    talk, and may end such a line with "[inaudible]"; fact lines are never touched.
    """
    P, n = _pieces(), len(o["calls"])
    calls = o["calls"]
    lead = np.repeat(np.arange(n), calls)  # lead of each call
    first_call = np.cumsum(calls) - calls
    gap = rng.integers(0, o["days_since_created"][lead] + 1)  # days before scoring, oldest call first
    day = score_day[lead] - gap[np.lexsort((-gap, lead))]
    talk = np.floor(np.exp(rng.normal(math.log(5.0), 1.0, len(lead)))).astype(np.int64)
    closing = rng.random((len(lead), 2)) < 0.8
    noise = rng.uniform(0.02, 0.25, n)

    # fact lines: each stated fact on one of the lead's calls
    fact_lead, fact = np.nonzero(_facts(o))
    template = rng.integers(0, 2, len(fact))
    values = np.stack([P.values[0][o["competitor"][fact_lead]],
                       P.values[1][rng.integers(0, len(DAY_NAMES), len(fact))],
                       P.values[2][np.nan_to_num(o["car_age"][fact_lead]).astype(np.int64)]])
    kind = P.fact_value[fact, template]
    fact_pieces = np.column_stack([P.fact_text[fact, template, 0],
                                   np.where(kind > 0, values[np.maximum(kind - 1, 0), np.arange(len(fact))], -1),
                                   P.fact_text[fact, template, 1]])
    fact_call = first_call[fact_lead] + (rng.random(len(fact)) * calls[fact_lead]).astype(np.int64)

    # the body of a call: small talk and its facts in random order
    talk_call = np.repeat(np.arange(len(lead)), talk)
    body_call = np.concatenate([talk_call, fact_call])
    order = np.argsort(body_call + rng.random(len(body_call)))  # shuffled within each call
    body_noisy = np.concatenate([P.small_talk[rng.integers(0, len(SMALL_TALK), len(talk_call)),
                                              o["model"][lead[talk_call]]], np.full(len(fact), -1)])[order]
    body_fact = np.concatenate([np.full((len(talk_call), 3), -1), fact_pieces])[order]

    # lines of each call: header, two greetings, body, closings
    body_len = np.bincount(body_call, minlength=len(lead))
    per_call = 3 + body_len + closing.sum(1)
    line_call = np.repeat(np.arange(len(lead)), per_call)
    pos = np.arange(len(line_call)) - np.repeat(np.cumsum(per_call) - per_call, per_call)
    in_body = (pos >= 3) & (pos < 3 + body_len[line_call])
    at_end = pos >= 3 + body_len[line_call]
    noisy = np.full(len(line_call), -1)
    noisy[pos == 1] = P.greeting_a[rng.integers(0, len(GREETINGS_A), len(lead)),
                                   o["advisor"][lead] % len(ADVISOR_NAMES), o["model"][lead]]
    noisy[pos == 2] = P.greeting_c[rng.integers(0, len(GREETINGS_C), len(lead))]
    noisy[in_body] = body_noisy

    max_words = P.words.shape[1]
    rows = np.full((len(line_call), max_words + 3), -1, dtype=np.int32)  # pieces of each line + separator
    header = pos == 0
    first_day = START.astype("datetime64[D]").astype(np.int64) - OLDEST_CALL_DAYS
    rows[header, :5] = np.column_stack([
        np.full(len(lead), P.header[0]), P.number[np.arange(len(lead)) - first_call[lead] + 1],
        np.full(len(lead), P.header[1]), P.date[day - first_day], np.full(len(lead), P.header[2])])
    fact_rows = np.flatnonzero(in_body)[body_noisy < 0]
    rows[fact_rows, :3] = body_fact[body_noisy < 0]
    which = np.where(closing[line_call, 0], pos - 3 - body_len[line_call], 1)  # the second closing may stand alone
    rows[at_end, 0] = P.closing[which[at_end]]

    # noisy lines: per-word ASR noise at the lead's rate
    said = np.flatnonzero(noisy >= 0)
    words = P.words[noisy[said]]
    rate = noise[lead[line_call[said]]][:, None].astype(np.float32)
    u = rng.random(words.shape, dtype=np.float32)
    form = 2 * (u < rate) - (u < 0.7 * rate)  # 1 'uh' + word, 2 clipped, 0 as said
    kept = (words >= 0) & (u >= 0.4 * rate)  # u < 0.4 rate: the word is dropped
    spaced = np.arange(max_words) > kept.argmax(axis=1)[:, None]  # every kept word but the first
    rows[said, 0] = P.speaker[noisy[said]]
    forms = P.forms.ravel()[(np.maximum(words, 0) * 3 + form) * 2 + spaced]
    rows[said, 1:max_words + 1] = np.where(kept, forms, -1)
    rows[said, max_words + 1] = np.where(rng.random(len(said)) < rate[:, 0], P.inaudible, -1)

    # separators: a line break within a call, a blank line between calls, nothing after the last line
    line_lead = lead[line_call]
    rows[:-1, -1] = np.where(line_call[1:] == line_call[:-1], P.newline,
                             np.where(line_lead[1:] == line_lead[:-1], P.blank_line, -1))
    keep = rows >= 0
    offsets = np.zeros(n + 1, dtype=np.int64)
    offsets[1:] = np.cumsum(np.bincount(line_lead, weights=keep.sum(1), minlength=n))
    parts = P.strings.take(pa.array(rows[keep]))
    return pc.binary_join(pa.LargeListArray.from_arrays(pa.array(offsets), parts), "")


# ---------------------------------------------------------------------------
# A world and its blocks of leads
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Draw:
    """One block of leads before rendering: observables (incl. the latent ``z``), logit, oracles, label."""

    rng: np.random.Generator  # the block's stream, positioned after the label
    obs: dict[str, np.ndarray]
    h: np.ndarray
    p_true: np.ndarray
    p_true_table: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class World:
    """A world's fixed parts: signal strengths, entities, the calibrated intercept, its seed."""

    config: WorldConfig
    seed: int
    entities: Entities
    intercept: float
    h_mean: float
    posterior: _TablePosterior

    @classmethod
    def build(cls, world: str | WorldConfig, seed: int) -> "World":
        if isinstance(world, str):
            world = world_config(world)
        ent = _entities(_stream(world.name, seed, ENTITIES))
        pilot = _observables(_stream(world.name, seed, PILOT), 100_000, ent)
        h0 = np.sum(_logit_parts(pilot, ent, world), axis=0)
        lo, hi = -20.0, 5.0  # the expected rate grows with the intercept: bisect
        for _ in range(45):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if _p_true_interpolated(h0 + mid, world.sigma).mean() > world.target_rate else (mid, hi)
        intercept = 0.5 * (lo + hi)
        return cls(world, seed, ent, intercept, float(np.mean(h0)) + intercept, _TablePosterior())

    @staticmethod
    def blocks(leads: int) -> range:
        return range(math.ceil(leads / BLOCK))

    def draw(self, leads: int, block: int) -> Draw:
        """Block ``block`` of the ``leads``-lead world (its own stream: any grouping gives the same leads)."""
        n = min(BLOCK, leads - block * BLOCK)
        rng = _stream(self.config.name, self.seed, LEADS, leads, block)
        o = _observables(rng, n, self.entities)
        h_table, h_text = _logit_parts(o, self.entities, self.config)
        h = self.intercept + h_table + h_text
        p_true = p_true_from_logit(h, self.config.sigma)
        p_table = p_true.copy()  # no call, no stated facts: nothing to integrate out
        called = o["calls"] > 0
        p_table[called] = self.posterior.p_true_table({k: v[called] for k, v in o.items()},
                                                      self.intercept + h_table[called], self.config)
        y = (rng.random(n) < sigmoid(h + rng.normal(0, self.config.sigma, n))).astype(np.int8)
        return Draw(rng, o, h, p_true, p_table, y)

    def table(self, leads: int, block: int) -> pa.Table:
        """Block ``block`` rendered: every column the Parquet files hold."""
        d = self.draw(leads, block)
        rng, o, ent = d.rng, d.obs, self.entities
        final, after_seconds = _outcomes(rng, d.h, d.y, o["stage"], self.h_mean)
        score_time = START + o["seconds"].astype("timedelta64[s]")
        texts = _transcripts(rng, o, score_time.astype("datetime64[D]").astype(np.int64))
        names = _names()

        def cat(values: pa.Array | tuple[str, ...], codes: np.ndarray) -> pa.Array:
            return (values if isinstance(values, pa.Array) else pa.array(values, pa.string())).take(codes)

        first = block * BLOCK
        cols = {
            "lead_id": np.arange(first, first + len(d.y), dtype=np.int64),
            "score_time": pa.array(score_time, type=pa.timestamp("s")),
            "age": o["age"], "gender": cat(GENDERS, o["gender"]), "income_band": cat(INCOMES, o["income"]),
            "education": cat(EDUCATION, o["education"]), "marital_status": cat(MARITAL, o["marital"]),
            "has_children": cat(("no", "yes"), o["children"]),
            "city": cat(names["city"], o["city"]), "province": cat(names["province"], ent.city_province[o["city"]]),
            "city_tier": cat(names["tier"], ent.city_tier[o["city"]]),
            "source_channel": cat(CHANNELS, o["channel"]), "campaign_id": cat(names["campaign"], o["campaign"]),
            "device_type": cat(DEVICES, o["device"]),
            "model_of_interest": cat(MODELS, o["model"]), "trim_level": cat(TRIMS, o["trim"]),
            "budget_k": o["budget_k"], "has_current_car": cat(("no", "yes"), o["has_car"]),
            "current_car_age": pa.array(o["car_age"], from_pandas=True),
            "app_opens_7d": o["app_opens_7d"], "app_opens_30d": o["app_opens_30d"],
            "web_visits_7d": o["web_visits_7d"], "web_visits_30d": o["web_visits_30d"],
            "configurator_sessions": o["configurator"], "price_page_views": o["price_views"],
            "video_views": o["video_views"], "brochure_downloads": o["brochures"],
            "calls_so_far": o["calls"], "call_seconds_so_far": o["call_seconds_so_far"],
            "days_since_created": o["days_since_created"], "days_since_last_activity": o["days_since_activity"],
            "advisor_id": cat(names["advisor"], o["advisor"]),
            "store_id": cat(names["store"], ent.advisor_store[o["advisor"]]),
            "current_stage": cat(STAGES, o["stage"]),
            "transcript": texts,
            "final_stage": cat(FINAL_STAGES, final), "call_seconds_after": after_seconds,
            "locked": d.y, "p_true": d.p_true, "p_true_table": d.p_true_table,
        }
        return pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in cols.items()})


@cache
def _names() -> dict[str, pa.Array]:
    """Names of the high-cardinality entities, indexed by their codes."""
    def names(fmt: str, values: Iterable[int]) -> pa.Array:
        return pa.array([fmt.format(v) for v in values], pa.string())
    return {"city": names("city_{:03d}", range(N_CITIES)), "province": names("prov_{:02d}", range(N_PROVINCES)),
            "tier": names("tier_{}", range(6)), "campaign": names("cmp_{:02d}", range(N_CAMPAIGNS)),
            "advisor": names("adv_{:04d}", range(N_ADVISORS)), "store": names("store_{:03d}", range(N_STORES))}


# ---------------------------------------------------------------------------
# The dataset spec and the files
# ---------------------------------------------------------------------------
CATEGORICAL = ("gender", "income_band", "education", "marital_status", "has_children", "city", "province",
               "city_tier", "source_channel", "campaign_id", "device_type", "model_of_interest", "trim_level",
               "has_current_car", "advisor_id", "store_id")
NUMERIC = ("age", "budget_k", "current_car_age", "app_opens_7d", "app_opens_30d", "web_visits_7d", "web_visits_30d",
           "configurator_sessions", "price_page_views", "video_views", "brochure_downloads", "calls_so_far",
           "call_seconds_so_far", "days_since_created", "days_since_last_activity")
GROUPS = {
    "Customer profile": ("age", "gender", "income_band", "education", "marital_status", "has_children"),
    "Location": ("city", "province", "city_tier"),
    "Lead source": ("source_channel", "campaign_id", "device_type"),
    "Vehicle interest": ("model_of_interest", "trim_level", "budget_k", "has_current_car", "current_car_age"),
    "Online behaviour": ("app_opens_7d", "app_opens_30d", "web_visits_7d", "web_visits_30d",
                         "configurator_sessions", "price_page_views", "video_views", "brochure_downloads"),
    "Sales contact": ("calls_so_far", "call_seconds_so_far", "days_since_created", "days_since_last_activity",
                      "advisor_id", "store_id"),
}


def world_spec(world: str, generated_by: Generator | None = None) -> DatasetSpec:
    """The spec of a generated world; ``generated_by`` (its identity) makes the data fingerprint portable."""
    return DatasetSpec(
        name=f"{world}", files=("leads-*.parquet",), id="lead_id", time="score_time", label="locked",
        features=Features(categorical=CATEGORICAL, numeric=NUMERIC, text=("transcript",)),
        current_stage="current_stage", stage_order=STAGES,
        outcomes=Outcomes(final_stage="final_stage", final_stage_order=FINAL_STAGES, call_seconds="call_seconds_after"),
        p_true="p_true", p_true_table="p_true_table", groups=GROUPS, split=SplitSpec(kind="temporal"),
        generated_by=generated_by,
    ).validate()


def identity(world: str, leads: int, seed: int, params: Mapping[str, float] | None = None) -> Generator:
    """What determines a generated world's data: the generator (name, version) and its arguments.

    ``params`` enter as far as they differ from the world's own values: the world as built in keeps the
    identity (and the data fingerprint) it had before worlds could be rescaled, a rescaled one gets another."""
    world_config(world, params)  # refuses an unknown world or parameter
    changed = {k: float(v) for k, v in sorted((params or {}).items()) if float(v) != getattr(WORLDS[world], k)}
    return Generator(generator=GENERATOR, version=GENERATOR_VERSION, world=world, leads=leads, seed=seed,
                     params=changed)


def folder_name(gen: Generator) -> str:
    """The data folder of a generated world: one per identity, so a rescaled world never overwrites its world."""
    return f"{gen.world}-{gen.leads}-s{gen.seed}" + "".join(f"-{k}{v:g}" for k, v in gen.params.items())


def _rechunk(tables: Iterable[pa.Table], size: int) -> Iterator[pa.Table]:
    """Regroup a stream of tables into tables of ``size`` rows (the last may be shorter)."""
    pending: list[pa.Table] = []
    rows = 0
    for t in tables:
        pending.append(t)
        rows += t.num_rows
        while rows >= size:
            joined = pa.concat_tables(pending)
            yield joined.slice(0, size)
            pending, rows = [joined.slice(size)], rows - size
    if rows:
        yield pa.concat_tables(pending)


def generate(world: str, leads: int, seed: int, out: str | Path, progress: bool = True,
             chunk: int = CHUNK, params: Mapping[str, float] | None = None) -> DatasetSpec:
    """Write ``leads`` leads of ``world`` (rescaled by ``params``, see :func:`world_config`) into ``out``:
    Parquet files of ``chunk`` leads and ``spec.yaml``.

    The spec's ``generated_by`` holds the world's identity (generator, version,
    world, leads, seed, changed parameters), which determines the data and its fingerprint;
    ``spec.yaml`` is written last, so its presence means the files are complete.
    """
    if leads < 100:
        raise ConfigError(f"--leads must be at least 100, got {leads}")
    if chunk < 1:
        raise ConfigError(f"chunk must be positive, got {chunk}")
    from tqdm.auto import tqdm

    gen = identity(world, leads, seed, params)
    world_ = World.build(world_config(world, gen.params), seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("leads-*.parquet"), out / "spec.yaml"]:
        old.unlink(missing_ok=True)
    bar = tqdm(total=leads, desc=f"generate {world}", unit="lead", unit_scale=True, disable=not progress)

    def blocks() -> Iterator[pa.Table]:
        for b in world_.blocks(leads):
            table = world_.table(leads, b)
            bar.update(table.num_rows)
            yield table

    for c, table in enumerate(_rechunk(blocks(), chunk)):
        with atomic_path(out / f"leads-{c:05d}.parquet") as tmp:
            pq.write_table(table, tmp, compression="zstd")
    bar.close()
    spec = world_spec(world, gen)
    scales = "".join(f", {k} {v:g}" for k, v in gen.params.items())
    spec.save(out / "spec.yaml", header=f"# synthetic '{world}' world{scales}: {leads} leads, seed {seed}, generator "
                                        f"v{GENERATOR_VERSION}, intercept {world_.intercept:.6f}\n")
    return spec

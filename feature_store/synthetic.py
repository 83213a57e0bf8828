r"""A synthetic CRM world with a known true conversion probability.

The papers' data is proprietary, so this module generates leads of the same
shape: 31 tabular features, the *current* funnel stage at the scoring moment,
call transcripts, the outcomes after the scoring moment and the label
(order lock-in). Two worlds:

* ``benchmark`` (Table 1): table + text signal, a weak funnel signal, 1.45 % positive;
* ``industrial`` (Table 2): richer funnel signal (the current stage matters a
  lot), 1.33 % positive.

How a lead is drawn
-------------------
1. A latent purchase intent ``z ~ N(0, 1)`` and the scoring time ``t``.
2. ``z`` (and ``t``, for drift) shape every *observable*: demographics,
   channel, behaviour counts, calls so far, the current stage, and the facts a
   customer states on a call (a deposit placed with a competitor, a fixed
   pick-up date, a financing question, ...). Facts are only observable when
   there was a call; they are rendered into the transcript with several
   paraphrases, and ASR noise touches only greetings and small talk, never the
   phrase that states a fact.
3. The label depends on the observables only::

       logit = h(x_obs, t) + eps,     eps ~ N(0, sigma^2) independent of x_obs and z
       y     = 1[U < sigmoid(logit)]

   ``h`` is partly non-linear (financing x income, model x age, a channel
   effect that drifts over the year, advisor/store random effects).
4. The outcome funnel (deepest stage reached after scoring, call seconds after
   scoring) is drawn *after* the label and consistent with it (``y = 1``
   implies ``lock``); for ``y = 0`` deeper stages are more likely for larger
   ``h``. Outcomes are HPRO's training supervision, never model inputs.

Derivation of ``p_true``
------------------------
Let ``X`` be everything observable at the scoring moment (features, stage,
transcript, time). Because ``eps`` is independent of ``(X, z)`` and the label
depends on ``z`` only through ``X``::

    P(y = 1 | X, z) = P(y = 1 | X) = E_eps[ sigmoid(h(X) + eps) ]
                    = 1/sqrt(pi) * sum_k w_k * sigmoid(h(X) + sqrt(2) * sigma * x_k)

with Gauss-Hermite nodes ``x_k`` and weights ``w_k`` (40 nodes: the error of
the quadrature is far below 1e-9 here). So ``p_true`` is the exact Bayes
probability given what any model can see, and no model — not even one given
the latent intent ``z`` — can rank better in expectation. It gives the oracle
row of every table and is never a model input.

The intercept of ``h`` is calibrated (bisection on a fixed pilot sample) so the
expected positive rate equals the target. Generation is chunked: memory stays
flat in the number of leads, and the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from feature_store.errors import ConfigError
from feature_store.spec import DatasetSpec, Outcomes, SplitSpec

CHUNK = 25_000
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
    """Signal strengths of one world (scales multiply the effects in ``h``)."""

    name: str
    target_rate: float
    table_scale: float
    text_scale: float
    stage_scale: float
    sigma: float = 0.8  # sd of the unobservable noise eps


WORLDS = {
    "benchmark": WorldConfig("benchmark", target_rate=0.0145, table_scale=1.0, text_scale=1.0, stage_scale=0.25),
    "industrial": WorldConfig("industrial", target_rate=0.0133, table_scale=0.9, text_scale=0.7, stage_scale=1.0),
}

_GH_X, _GH_W = np.polynomial.hermite.hermgauss(40)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def p_true_from_logit(h: np.ndarray, sigma: float) -> np.ndarray:
    """E_eps[sigmoid(h + eps)], eps ~ N(0, sigma^2), by Gauss-Hermite quadrature."""
    nodes = h[:, None] + math.sqrt(2.0) * sigma * _GH_X[None, :]
    return (sigmoid(nodes) @ _GH_W) / math.sqrt(math.pi)


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


def _entities(seed: int) -> Entities:
    rng = np.random.default_rng([seed, 7919])
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
    o["income"] = np.digitize(0.35 * z + rng.normal(size=n), [-1.2, -0.4, 0.4, 1.2])
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

    activity = 0.6 * z + rng.normal(0, 0.8, n)
    def counts(mu: float, slope: float) -> np.ndarray:
        return rng.poisson(np.exp(mu + slope * activity))
    o["app_opens_7d"] = counts(0.6, 0.7)
    o["app_opens_30d"] = o["app_opens_7d"] + counts(1.2, 0.6)
    o["web_visits_7d"] = counts(0.3, 0.5)
    o["web_visits_30d"] = o["web_visits_7d"] + counts(0.9, 0.5)
    o["configurator"] = counts(-0.6, 0.9)
    o["price_views"] = counts(-0.3, 0.8)
    o["video_views"] = counts(0.2, 0.3)
    o["brochures"] = counts(-1.5, 0.6)

    o["days_since_created"] = np.floor(rng.exponential(12.0, n)).astype(np.int64)
    o["calls"] = np.minimum(rng.poisson(np.exp(-0.2 + 0.35 * z) * (0.4 + np.minimum(o["days_since_created"], 30) / 15)), 6)
    o["days_since_activity"] = np.minimum(np.floor(rng.exponential(np.exp(1.6 - 0.5 * z))), o["days_since_created"]).astype(np.int64)
    o["advisor"] = rng.integers(0, N_ADVISORS, n)

    stage_latent = 0.9 * z + 0.8 * np.minimum(o["calls"], 3) + rng.normal(0, 1, n)
    stage = np.digitize(stage_latent, [0.6, 2.2, 3.4])
    o["stage"] = np.where(o["calls"] == 0, np.minimum(stage, 0), np.maximum(stage, 1))

    has_call = o["calls"] > 0
    def fact(logit: np.ndarray) -> np.ndarray:
        return (rng.random(n) < sigmoid(logit)) & has_call
    o["f_competitor_deposit"] = fact(-2.6 - 0.9 * z)
    o["f_pickup_date"] = fact(-2.8 + 1.0 * z)
    o["f_financing"] = fact(np.full(n, -1.1))
    o["f_price_objection"] = fact(-1.0 - 0.5 * z)
    o["f_test_drive_booked"] = fact(-2.2 + 0.8 * z)
    o["f_spouse"] = fact(np.full(n, -1.6))
    o["f_trade_in"] = fact(np.where(o["has_car"] == 1, -0.6, -9.0))
    o["competitor"] = rng.integers(0, len(COMPETITORS), n)
    o["call_seconds_so_far"] = np.where(has_call, np.round(o["calls"] * 60 * np.exp(0.7 + 0.3 * z + rng.normal(0, 0.5, n))), 0).astype(np.int64)
    return o


def _logit_without_intercept(o: dict[str, np.ndarray], ent: Entities, w: WorldConfig) -> np.ndarray:
    """h(x_obs, t) minus its intercept. Uses observables (and time) only."""
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
    text = (-2.2 * o["f_competitor_deposit"] + 1.6 * o["f_pickup_date"]
            + o["f_financing"] * np.array([-0.6, 1.2, 1.0, 0.0, 0.0])[o["income"]]
            - 0.5 * o["f_price_objection"] + 0.9 * o["f_test_drive_booked"]
            - 0.4 * o["f_spouse"] + 0.3 * o["f_trade_in"])
    stage = np.array([0.0, 0.6, 1.5, 2.4])[o["stage"]]
    drift = -0.3 * o["frac_year"]
    return w.table_scale * table + w.text_scale * text + w.stage_scale * stage + drift


def _calibrate_intercept(seed: int, ent: Entities, w: WorldConfig) -> float:
    """Intercept so that the expected positive rate equals the target (fixed pilot sample)."""
    pilot = _observables(np.random.default_rng([seed, 104729]), 100_000, ent)
    h0 = _logit_without_intercept(pilot, ent, w)
    lo, hi = -20.0, 5.0
    for _ in range(45):
        mid = 0.5 * (lo + hi)
        if p_true_from_logit(h0 + mid, w.sigma).mean() > w.target_rate:
            hi = mid
        else:
            lo = mid
    return 0.5 * (lo + hi)


# ---------------------------------------------------------------------------
# Transcripts
# ---------------------------------------------------------------------------
GREETINGS_A = ["Hello, this is {adv} from the {model} showroom, is now a good time?",
               "Hi, {adv} here calling about your interest in the {model}.",
               "Good afternoon, I'm {adv}, your sales advisor for the {model}."]
GREETINGS_C = ["Yes, hi.", "Uh, yes, go ahead.", "Sure, I have a few minutes.", "Hello? Yes, I can talk."]
SMALL_TALK = [
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
]
CLOSINGS = [("Advisor", "Thank you for your time, have a nice day."), ("Customer", "Thanks, bye."),
            ("Advisor", "I'll follow up next week then."), ("Customer", "Okay, talk later.")]
FACTS = {
    "f_competitor_deposit": ["Customer: Honestly I already paid a deposit for the {competitor} last week.",
                             "Customer: I put down a deposit on a {competitor} already, so probably not."],
    "f_pickup_date": ["Customer: I need to pick up the car on the {day}, that date is fixed.",
                      "Customer: We have fixed the pick-up date, it has to be the {day}."],
    "f_financing": ["Customer: Can I pay in instalments? What are the financing options?",
                    "Customer: I would need a car loan, what interest rate do you offer on financing?"],
    "f_price_objection": ["Customer: To be honest the price is too high for me.",
                          "Customer: That is more expensive than I expected, the price is a problem."],
    "f_test_drive_booked": ["Customer: Yes, book me a test drive this Saturday morning.",
                            "Customer: Please confirm my test drive appointment for the weekend."],
    "f_spouse": ["Customer: I need to discuss it with my wife first.",
                 "Customer: My husband has to agree before we decide anything."],
    "f_trade_in": ["Customer: Can I trade in my current car? It is about {car_age} years old.",
                   "Customer: I want to trade in my old car as part of the deal."],
}
FACT_KEYS = tuple(FACTS)
ADVISOR_NAMES = ("Li Wei", "Zhang Min", "Wang Fang", "Chen Jie", "Liu Yang", "Zhao Lei", "Huang Ying", "Zhou Tao")
DAY_NAMES = ("15th", "20th", "first of next month", "end of this month", "28th")


def _asr_noise(rng: np.random.Generator, line: str, rate: float) -> str:
    """ASR-style noise on greetings and small talk (never on fact sentences)."""
    words = line.split(" ")
    out = []
    for w in words:
        u = rng.random()
        if u < rate * 0.4:
            continue  # dropped word
        if u < rate * 0.7:
            out.append("uh " + w)
        elif u < rate:
            out.append(w[:-1] if len(w) > 3 else w)  # clipped ending
        else:
            out.append(w)
    if rng.random() < rate:
        out.append("[inaudible]")
    return " ".join(out)


def _transcripts(rng: np.random.Generator, o: dict[str, np.ndarray], score_days: np.ndarray) -> list[str]:
    n = len(o["calls"])
    out: list[str] = []
    talk_len = np.exp(rng.normal(math.log(5.0), 1.0, (n, 6)))  # small-talk turns per call: long tail
    noise = rng.uniform(0.02, 0.25, n)
    for i in range(n):
        k = int(o["calls"][i])
        if k == 0:
            out.append("")
            continue
        model = MODELS[o["model"][i]]
        adv = ADVISOR_NAMES[o["advisor"][i] % len(ADVISOR_NAMES)]
        facts = [f for f in FACT_KEYS if o[f][i]]
        fact_call = rng.integers(0, k, len(facts))
        calls = []
        gaps = np.sort(rng.integers(0, max(int(o["days_since_created"][i]), 1) + 1, k))[::-1]
        for c in range(k):  # oldest first in the text; the prompt builder reorders
            day = np.datetime64(int(score_days[i]) - int(gaps[c]), "D")
            lines = [f"[call {c + 1} on {day}]",
                     "Advisor: " + _asr_noise(rng, GREETINGS_A[rng.integers(3)].format(adv=adv, model=model), noise[i]),
                     "Customer: " + _asr_noise(rng, GREETINGS_C[rng.integers(4)], noise[i])]
            body = [f"{s}: " + _asr_noise(rng, t.format(model=model), noise[i])
                    for s, t in (SMALL_TALK[j] for j in rng.integers(0, len(SMALL_TALK), int(talk_len[i, c])))]
            for f, fc in zip(facts, fact_call):
                if fc == c:
                    txt = FACTS[f][rng.integers(2)].format(
                        competitor=COMPETITORS[o["competitor"][i]], day=DAY_NAMES[rng.integers(len(DAY_NAMES))],
                        car_age=int(np.nan_to_num(o["car_age"][i])))
                    body.insert(int(rng.integers(0, len(body) + 1)), txt)
            lines += body
            lines += [f"{s}: {t}" for s, t in CLOSINGS[:2] if rng.random() < 0.8]
            calls.append("\n".join(lines))
        out.append("\n\n".join(calls))
    return out


# ---------------------------------------------------------------------------
# Outcomes and the assembled chunk
# ---------------------------------------------------------------------------
def _outcomes(rng: np.random.Generator, h: np.ndarray, y: np.ndarray, h_mean: float) -> tuple[np.ndarray, np.ndarray]:
    """Deepest stage after scoring and call seconds after scoring, drawn after (and consistent with) y."""
    u = (h - h_mean) + rng.logistic(0, 1, len(h))
    final = np.digitize(u, [0.0, 1.3, 2.6])  # 0 defeat, 1 call, 2 visit, 3 test_drive
    final = np.where(y == 1, 4, final)
    talk = np.exp(np.log(90) + 0.45 * (h - h_mean) + 0.6 * (final >= 2) + rng.normal(0, 0.7, len(h)))
    seconds = np.where(final == 0, 0, np.round(talk)).astype(np.int64)
    return final, seconds


@dataclass(frozen=True)
class Draw:
    """One chunk of leads before rendering: observables (incl. the latent ``z``), logit, p_true, label."""

    rng: np.random.Generator
    obs: dict[str, np.ndarray]
    h: np.ndarray
    p_true: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class World:
    """A world's fixed parts: signal strengths, entities and the calibrated intercept."""

    config: WorldConfig
    entities: Entities
    intercept: float
    h_mean: float

    @classmethod
    def build(cls, world: str, seed: int) -> "World":
        if world not in WORLDS:
            raise ConfigError(f"unknown world '{world}'", hint=f"choose one of {sorted(WORLDS)}")
        w, ent = WORLDS[world], _entities(seed)
        intercept = _calibrate_intercept(seed, ent, w)
        pilot = _observables(np.random.default_rng([seed, 104729]), 20_000, ent)
        h_mean = float(np.mean(_logit_without_intercept(pilot, ent, w) + intercept))
        return cls(w, ent, intercept, h_mean)

    def draw(self, seed: int, chunk: int, n: int) -> Draw:
        rng = np.random.default_rng([seed, chunk])
        o = _observables(rng, n, self.entities)
        h = _logit_without_intercept(o, self.entities, self.config) + self.intercept
        y = (rng.random(n) < sigmoid(h + rng.normal(0, self.config.sigma, n))).astype(np.int8)
        return Draw(rng, o, h, p_true_from_logit(h, self.config.sigma), y)


def _chunk_table(world: World, seed: int, chunk: int, n: int, first_id: int) -> pa.Table:
    d = world.draw(seed, chunk, n)
    rng, o, h, p, y, ent = d.rng, d.obs, d.h, d.p_true, d.y, world.entities
    final, after_seconds = _outcomes(rng, h, y, world.h_mean)
    score_time = START + o["seconds"].astype("timedelta64[s]")
    texts = _transcripts(rng, o, (score_time.astype("datetime64[D]") - np.datetime64("1970-01-01")).astype(int))

    def cat(values: tuple[str, ...], codes: np.ndarray) -> pa.Array:
        return pa.array(np.asarray(values, dtype=object)[codes], type=pa.string())

    cols = {
        "lead_id": pa.array(np.arange(first_id, first_id + n, dtype=np.int64)),
        "score_time": pa.array(score_time, type=pa.timestamp("s")),
        "age": o["age"], "gender": cat(GENDERS, o["gender"]), "income_band": cat(INCOMES, o["income"]),
        "education": cat(EDUCATION, o["education"]), "marital_status": cat(MARITAL, o["marital"]),
        "has_children": cat(("no", "yes"), o["children"]),
        "city": pa.array([f"city_{c:03d}" for c in o["city"]]),
        "province": pa.array([f"prov_{ent.city_province[c]:02d}" for c in o["city"]]),
        "city_tier": pa.array([f"tier_{ent.city_tier[c]}" for c in o["city"]]),
        "source_channel": cat(CHANNELS, o["channel"]),
        "campaign_id": pa.array([f"cmp_{c:02d}" for c in o["campaign"]]),
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
        "advisor_id": pa.array([f"adv_{a:04d}" for a in o["advisor"]]),
        "store_id": pa.array([f"store_{ent.advisor_store[a]:03d}" for a in o["advisor"]]),
        "current_stage": cat(STAGES, o["stage"]),
        "transcript": pa.array(texts, type=pa.string()),
        "final_stage": cat(FINAL_STAGES, final), "call_seconds_after": after_seconds,
        "locked": y, "p_true": p,
    }
    return pa.table({k: (v if isinstance(v, pa.Array) else pa.array(v)) for k, v in cols.items()})


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


def world_spec(world: str, leads: int, seed: int) -> DatasetSpec:
    return DatasetSpec(
        name=f"{world}", files=("leads-*.parquet",), id="lead_id", time="score_time", label="locked",
        categorical=CATEGORICAL, numeric=NUMERIC, text=("transcript",),
        current_stage="current_stage", stage_order=STAGES,
        outcomes=Outcomes(final_stage="final_stage", final_stage_order=FINAL_STAGES, call_seconds="call_seconds_after"),
        p_true="p_true", groups=GROUPS, split=SplitSpec(kind="temporal"),
    ).validate()


def generate(world: str, leads: int, seed: int, out: str | Path, progress: bool = True) -> DatasetSpec:
    """Write ``leads`` leads of ``world`` as Parquet chunks plus ``spec.yaml`` into ``out``."""
    if leads < 100:
        raise ConfigError(f"--leads must be at least 100, got {leads}")
    from tqdm.auto import tqdm

    world_ = World.build(world, seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("leads-*.parquet"):
        old.unlink()
    n_chunks = math.ceil(leads / CHUNK)
    for c in tqdm(range(n_chunks), desc=f"generate {world}", unit="chunk", disable=not progress):
        n = min(CHUNK, leads - c * CHUNK)
        table = _chunk_table(world_, seed, c, n, c * CHUNK)
        tmp = out / f".leads-{c:05d}.parquet.tmp"
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(out / f"leads-{c:05d}.parquet")
    spec = world_spec(world, leads, seed)
    (out / "spec.yaml").write_text(
        f"# synthetic '{world}' world: {leads} leads, seed {seed}, intercept {world_.intercept:.6f}\n"
        + yaml.safe_dump(spec.to_dict(), sort_keys=False, width=120))
    return spec

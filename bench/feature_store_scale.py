"""Feature store at scale: load + split + encode time, peak RSS, and bytes held per model (issue 17).

A generated industrial world (``feature_store.synthetic.generate``, outside the
clock) is loaded with ``Dataset.load(load_spec(DIR/"spec.yaml"))`` and split and
encoded with ``.splits()`` in a subprocess of its own, so the peak RSS (from
``wait4``) belongs to load + split + encode alone (it includes the interpreter
and imports; ``import_rss_mb`` is the RSS before loading, for context).

Bytes: ``encoded_mb`` is what the encoded arrays of the three splits take
(``codes()``, i.e. ``cat`` and the stage code, ``num``, ``stage``); ``raw_mb`` the
per-split ``raw`` frames (the tabular features) and ``texts_mb`` what the splits
hold for their texts (row numbers into the dataset's one copy). Then the inputs
four methods build from the *train* split are checked — the DeepFM and xDeepFM
adapters (``DeepCTR._inputs`` and ``deepctr_compat.float32_inputs``, what
``deepctr_compat.fit`` passes to deepctr-torch), LightGBM (``LightGBM._features``)
and logistic regression (``SklearnClassifier.fit_design``): ``held_mb`` is the bytes
of the arrays a method holds that are *not* views of ``split.codes()`` /
``split.num`` (``np.shares_memory``), ``views`` says whether any input column is
a view, and ``shared_between_deepfm_and_xdeepfm`` whether the two CTR models'
inputs share memory. deepctr-torch's own ``fit`` then concatenates all columns
into one more float32 array (n x columns x 4 bytes): ``deepctr_concat_mb``
(computed, not measured). Goal (issue 17): the encoded arrays are not copied per
model, i.e. ``held_mb`` ~ 0 for every model that reads them as they are
(LightGBM needs one dense float matrix; logreg's one-hot CSR is a design of its own).

Fit memory (``--fit-memory``): what a method's fit + score takes beyond the loaded
splits, the figures behind the runner's memory guard (``benchmark.runner.FIT_MEMORY``).
For one or two methods of each family, a subprocess loads the world, keeps a random
``fraction`` of every split, and samples its RSS while the method fits and scores
(one CTR epoch, 50 LightGBM rounds, one logreg C: memory, not quality); this at two
fractions gives per method a slope (``bytes_per_lead``: per lead it reads, train leads
up to its cap + valid + test) and an intercept (``fixed_mb``: the model, its imports
done inside fit), and per family the largest of each.

    .venv/bin/python bench/feature_store_scale.py [--sizes 1000000] [--world industrial] [--data DIR]
    .venv/bin/python bench/feature_store_scale.py --fit-memory --sizes 1000000 --data DIR

``--data DIR`` reuses a world already generated there (DIR/<leads>/spec.yaml) instead
of generating into a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(__file__))
from _record import record  # noqa: E402

GOALS = {"held_mb_per_model": 0}  # the encoded arrays must not be copied per model
FIT_METHODS = {"ctr": ("deepfm", "xdeepfm"), "classical": ("lightgbm", "logreg"), "llm": ("asllr_hpro",),
               "rule": ("funnel_recency",), "oracle": ("oracle",)}
FIT_SETTINGS = ("ctr.epochs=1", "lightgbm.max_rounds=50", "logreg.C_grid=[1.0]")
FIT_FRACTIONS = {"llm": (0.01, 0.04)}  # the LLM scores every test lead with its backbone: slow on a CPU
DEFAULT_FRACTIONS = (0.05, 0.2)
# logreg's one-hot design passes through several transient copies in scikit-learn (+860 MB at 630k train
# leads, ~5 GB at 3.9M): measured up to this many train leads only; its bytes grow linearly with them.
LOGREG_MAX_TRAIN = 1_000_000


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _mb(n: int) -> float:
    return round(n / 2 ** 20, 1)


def _held(arrays: list, bases: list) -> tuple[int, bool]:
    """Bytes of ``arrays`` that are not views of ``bases``; whether any array is such a view."""
    import numpy as np
    import scipy.sparse as sp

    held, views = 0, False
    for a in arrays:
        if sp.issparse(a):
            held += a.data.nbytes + a.indices.nbytes + a.indptr.nbytes
        elif any(np.shares_memory(a, b) for b in bases):
            views = True
        else:
            held += a.nbytes
    return held, views


def method_inputs(train) -> dict:
    """Bytes each model holds for the train split's inputs, and whether they are views."""
    import numpy as np

    import leadrank_api as api
    from baselines import deepctr_compat as dc
    from baselines.gbdt import LightGBM
    from benchmark import registry
    from benchmark.profile import load_profile

    config = load_profile("quick").config
    bases = [train.codes(), train.num]
    out, ctr_arrays = {}, {}
    for name in ("deepfm", "xdeepfm"):
        cls = registry.get(name)
        method = cls.from_config({"ctr": api.method_settings(cls, config)["ctr"].to_dict()}, seed=0)
        _, values = method._inputs(train)
        f32 = dc.float32_inputs(values)  # what deepctr_compat.fit hands to deepctr-torch
        held_dict, views_dict = _held(list(values.values()), bases)
        held_f32, views_f32 = _held(list(f32.values()), bases)
        ctr_arrays[name] = list(f32.values())
        width = sum(1 if a.ndim == 1 else a.shape[1] for a in f32.values())
        out[name] = {"columns_view_of_split": views_dict, "inputs_mb": _mb(held_dict),
                     "float32_views_of_split": views_f32, "held_mb": _mb(held_f32),
                     "deepctr_concat_mb": _mb(len(train) * width * 4)}
    out["shared_between_deepfm_and_xdeepfm"] = any(
        np.shares_memory(a, b) for a in ctr_arrays["deepfm"] for b in ctr_arrays["xdeepfm"])
    held, views = _held([LightGBM._features(train)], bases)
    out["lightgbm"] = {"held_mb": _mb(held), "views": views}
    if len(train) > LOGREG_MAX_TRAIN:
        return out
    cls = registry.get("logreg")
    logreg = cls.from_config({k: v.to_dict() for k, v in api.method_settings(cls, config).items()}, seed=0)
    held, views = _held([logreg.fit_design(train)], bases)
    out["logreg"] = {"held_mb": _mb(held), "views": views}
    return out


def child(spec_path: str) -> None:
    """Inside the subprocess: load, split + encode, bytes; one JSON object on stdout."""
    import numpy as np

    from feature_store.spec import load_spec
    from feature_store.store import Dataset

    import_rss = _rss_mb()
    t0 = time.perf_counter()
    ds = Dataset.load(load_spec(spec_path))
    t1 = time.perf_counter()
    load_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    splits = ds.splits()
    t2 = time.perf_counter()
    parts = (splits.train, splits.valid, splits.test)
    encoded = sum(a.nbytes for s in parts for a in (s.codes(), s.num, s.stage) if a is not None)
    raw = sum(int(s.raw.memory_usage(deep=False).sum()) for s in parts)
    texts = sum(v.rows.nbytes for s in parts for v in s.texts.values())  # TextColumn: row numbers only
    frame = int(ds.frame.memory_usage(deep=False).sum())
    split_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    split_rss = _rss_mb()
    per_model = method_inputs(splits.train)
    print(json.dumps({
        "rows": {s.name: len(s) for s in parts}, "load_s": round(t1 - t0, 2), "split_encode_s": round(t2 - t1, 2),
        "load_split_encode_s": round(t2 - t0, 2), "import_rss_mb": round(import_rss),
        "peak_rss_after_load_mb": round(load_peak), "peak_rss_after_split_mb": round(split_peak),
        "rss_after_split_mb": round(split_rss), "rss_after_model_inputs_mb": round(_rss_mb()),
        "frame_mb_shallow": _mb(frame),
        "encoded_mb": _mb(encoded), "raw_mb_shallow": _mb(raw), "texts_mb": _mb(texts),
        "cat_dtype": str(splits.train.cat.dtype), "num_dtype": str(splits.train.num.dtype),
        "cat_shape_train": list(splits.train.cat.shape), "num_shape_train": list(splits.train.num.shape),
        "per_model_train": per_model, "numpy": np.__version__}))


def fit_child(spec_path: str, name: str, fraction: float) -> None:
    """Inside the subprocess: a ``fraction`` of every split, then the RSS before and at its peak while
    the method fits and scores; one JSON object on stdout."""
    import ctypes
    import gc
    import threading

    import numpy as np
    import pyarrow as pa

    import leadrank_api as api
    from benchmark import registry
    from benchmark.profile import load_profile
    from feature_store.spec import load_spec
    from feature_store.store import Dataset

    profile = load_profile("quick", FIT_SETTINGS)
    profile.register_variants()
    cls = registry.get(name)
    settings = api.method_settings(cls, profile.config)
    splits = Dataset.load(load_spec(spec_path)).splits()
    rng = np.random.default_rng(0)
    train, valid, test = (s.take(np.sort(rng.choice(len(s), round(fraction * len(s)), replace=False)))
                          for s in (splits.train, splits.valid, splits.test))
    del splits
    gc.collect()
    pa.default_memory_pool().release_unused()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    before, peak, done = _rss_mb(), [0.0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_mb())
            time.sleep(0.01)

    sampler = threading.Thread(target=sample, daemon=True)
    with tempfile.TemporaryDirectory() as cache:
        t0 = time.perf_counter()
        sampler.start()
        method = cls(api.MethodContext(seed=0, settings=settings, cache_dir=cache))
        method.fit(train, valid)
        method.score(test)
        done.set()
        sampler.join()
    cap = cls.train_cap(settings)
    leads = min(len(train), len(train) if cap is None else cap) + len(valid) + len(test)
    print(json.dumps({"leads": leads, "rss_before_mb": round(before), "delta_mb": round(peak[0] - before, 1),
                      "fit_score_s": round(time.perf_counter() - t0, 1)}))


def fit_memory(world: str, leads: int, data: Path) -> dict:
    """Per method two fractions -> bytes per lead (slope) and fixed MB (intercept); per family the largest."""
    spec = data / str(leads) / "spec.yaml"
    methods, families = {}, {}
    for family, names in FIT_METHODS.items():
        for name in names:
            points = []
            for fraction in FIT_FRACTIONS.get(family, DEFAULT_FRACTIONS):
                out = subprocess.run([sys.executable, __file__, "--fit-child", str(spec), name, str(fraction)],
                                     stdout=subprocess.PIPE, text=True, check=True).stdout
                points.append({"fraction": fraction, **json.loads(out.strip().splitlines()[-1])})
            (n1, d1), (n2, d2) = ((p["leads"], p["delta_mb"] * 2 ** 20) for p in points)
            per_lead = max(0.0, (d2 - d1) / (n2 - n1))
            fixed = max(0.0, d1 - per_lead * n1)
            methods[name] = {"family": family, "points": points, "bytes_per_lead": round(per_lead),
                             "fixed_mb": _mb(fixed)}
            fam = families.setdefault(family, {"bytes_per_lead": 0, "fixed_mb": 0.0})
            fam["bytes_per_lead"] = max(fam["bytes_per_lead"], round(per_lead))
            fam["fixed_mb"] = max(fam["fixed_mb"], _mb(fixed))
    return {"measure": "fit_memory", "world": world, "leads": leads, "settings": list(FIT_SETTINGS),
            "methods": methods, "families": families}


def generate(world: str, leads: int, seed: int, out: Path) -> float:
    from feature_store.synthetic import generate as gen

    t0 = time.perf_counter()
    gen(world, leads, seed, str(out), progress=False)
    return time.perf_counter() - t0


def measure(world: str, leads: int, seed: int, data: Path | None) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = (data / str(leads)) if data else Path(tmp)
        gen_s = None
        if not (out / "spec.yaml").exists():
            gen_s = round(generate(world, leads, seed, out), 1)
        proc = subprocess.Popen([sys.executable, __file__, "--child", str(out / "spec.yaml")],
                                stdout=subprocess.PIPE, text=True)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
        if status:
            raise SystemExit(f"load/split of {leads:,} leads failed (status {status})")
    inner = json.loads(stdout.strip().splitlines()[-1])
    held = [v["held_mb"] for k, v in inner["per_model_train"].items() if isinstance(v, dict)]
    return {"world": world, "leads": leads, "seed": seed, "generate_s": gen_s, **inner,
            "max_held_mb_per_model": max(held), "peak_rss_mb": round(usage.ru_maxrss / 1024),
            "process_cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
            "goals": {"max_held_mb_per_model": GOALS["held_mb_per_model"]}}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(sys.argv[2])
    if sys.argv[1:2] == ["--fit-child"]:
        return fit_child(sys.argv[2], sys.argv[3], float(sys.argv[4]))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1000000")
    p.add_argument("--world", default="industrial")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data", type=Path, help="folder with <leads>/spec.yaml worlds to reuse (generated if absent)")
    p.add_argument("--fit-memory", action="store_true", help="measure fit memory by family (needs --data)")
    a = p.parse_args()
    for leads in (int(s) for s in a.sizes.split(",")):
        if a.fit_memory:
            record("feature_store", fit_memory(a.world, leads, a.data))
        else:
            record("feature_store", measure(a.world, leads, a.seed, a.data))


if __name__ == "__main__":
    main()

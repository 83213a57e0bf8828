"""Runs (dataset x method x seed) jobs and writes one result per job.

A job: load the dataset through the feature store (generating a synthetic
world on first use), fit the method on train with valid for early stopping,
score every test lead, compute the metrics with bootstrap CIs, and write the
scores and the JSON record atomically. A finished job is reused unless
``force`` when its data, test sample and resolved settings are unchanged
(``benchmark.results.rerun_reason``; a rerun says why each other job runs again);
a job whose data cannot meet a method's requirement is recorded as
"n/a" with the reason, so tables show it instead of silently dropping it. A
job that raises is recorded as "failed" (one-line reason in the JSON, the
traceback in a .log beside it) and the other jobs go on: one method's crash
never sinks a run. One runner at a time writes to a results folder (a lock).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import time
import traceback
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import leadrank_api as api
from benchmark import registry
from benchmark.metrics import evaluate
from benchmark.profile import DatasetEntry, Profile
from benchmark.results import NO_RESULT, RunRecord, provenance, rerun_reason, write_run
from feature_store.adapters import resolve_spec
from feature_store.embeddings import attach_h_text, h_text_settings
from feature_store.errors import ConfigError, DataError, LeadrankError
from feature_store.spec import load_spec
from feature_store.split import Split, SplitSet
from feature_store.store import Dataset
from feature_store.synthetic import folder_name, generate, identity


def main_process() -> bool:
    """False on every process but the first of an ``accelerate launch`` / ``torchrun``: all of them run
    the same jobs (an LLM row trains data-parallel across them), only the first writes results."""
    return int(os.environ.get("RANK", "0")) == 0


LOCK = ".leadrank.lock"


ALL_LEADS = 2 ** 62  # a learning-curve point that trains on the whole training split


@dataclass(frozen=True)
class Job:
    entry: DatasetEntry
    method: str
    seed: int
    train_size: int | None = None  # a learning-curve point: train on this many leads (SplitSet.with_train_budget)


def resolve_dataset(entry: DatasetEntry, data_dir: Path, progress: bool = False) -> Dataset:
    """Load a profile dataset: a spec (or public-data adapter), or a synthetic world, generated on
    first use and again whenever the generator's version (or the world asked for, its scales included)
    changed."""
    if entry.spec:
        return Dataset.load(resolve_spec(entry.spec, data_dir))
    wanted = identity(entry.world, entry.leads, entry.seed, entry.world_params)
    folder = Path(data_dir) / folder_name(wanted)
    spec_file = folder / "spec.yaml"
    spec = load_spec(spec_file) if spec_file.is_file() else None
    if spec is None or spec.generated_by != wanted:
        generate(entry.world, entry.leads, entry.seed, folder, progress=progress, params=entry.world_params)
        spec = load_spec(spec_file)  # as read back from its folder (file paths resolve against it)
    # results are filed under the profile's dataset name, not the world's
    return Dataset.load(spec.model_copy(update={"name": entry.name}))


_SPLITS: dict[tuple, tuple[Dataset, SplitSet]] = {}


def load_splits(entry: DatasetEntry, profile: Profile, progress: bool = False) -> tuple[Dataset, SplitSet]:
    """Dataset and its splits, cached per process (all methods of a table share them).

    The key holds everything the splits depend on: the entry, the data folder and the
    evaluation settings (the test sample)."""
    ev = profile.eval
    key = (entry, profile.data_dir, ev)
    if key not in _SPLITS:
        ds = resolve_dataset(entry, profile.data_dir, progress)
        _SPLITS[key] = (ds, ds.splits(ev.test_positives, ev.test_negatives, ev.subsample_seed))
    return _SPLITS[key]


def missing_requirement(method: type[api.Method], splits: SplitSet) -> str:
    """Why the data cannot serve this method ('' when it can)."""
    test = splits.test
    checks = {"text": (test.schema.has_text, "no text column"),
              "stage": (test.stage is not None, "no current-stage column"),
              "p_true": (test.has_p_true, "no p_true (real data)"),
              "p_true_table": (test.has_p_true_table, "no p_true_table (real data)"),
              "tabular": (bool(test.schema.view().columns) or test.stage is not None,
                          "no tabular feature and no current stage"),
              "categorical": (bool(test.schema.categorical) or test.stage is not None,
                              "no categorical feature and no current stage (its interaction layers need one)"),
              "h_text": (test.schema.has_text, "no text column")}
    for req in method.requires:
        ok, why = checks[req]
        if not ok:
            return why
    return ""


def plan(profile: Profile, methods: list[str] | None = None, seeds: list[int] | None = None,
         datasets: list[DatasetEntry] | None = None, train_size: int | None = None) -> list[Job]:
    """Every job of the profile: each dataset with each method of its table and each seed.

    Every chosen method's settings are validated here, before any job runs."""
    registered = registry.all_methods()
    chosen = methods or profile.core.methods
    if chosen == "all":
        chosen = [name for name, m in registered.items() if m.by_default]
    for name in chosen:
        cls = registry.get(name)
        cls.check_settings(api.method_settings(cls, profile.config))
    jobs = []
    for entry in datasets or profile.datasets:
        tables = api.PAPER_TABLES if entry.table == "all" else (entry.table,)
        for name in entry.methods or ():
            registry.get(name)  # a misspelt name fails here, before any job runs
        for m in chosen:
            if entry.methods is not None and m not in entry.methods:
                continue
            if any(t in registered[m].tables for t in tables):
                jobs.extend(Job(entry, m, s, train_size) for s in (seeds or profile.seeds))
    return jobs


def resolved_settings(cls: type[api.Method], config: dict[str, Any]) -> dict[str, Any]:
    """What a job of ``cls`` runs with, as its result records it (``config.method_settings``) and as
    resume compares it: every section the method reads, validated, after the profile, ``extend:``, the
    variant's overrides and ``--set``; for a reader of ``h_text`` also every section its embedding
    depends on (``h_text`` and those its provider reads); and the variant's resolved options (e.g. which
    deepctr model), under ``api.OPTIONS_KEY``, where the method has any."""
    sections = api.method_settings(cls, config) | (h_text_settings(config) if "h_text" in cls.requires else {})
    settings = {section: s.to_dict() for section, s in sections.items()}
    options = cls.options.to_dict()
    return settings | ({api.OPTIONS_KEY: options} if options else {})


def _job_data(job: Job, profile: Profile, progress: bool = False) -> tuple[Dataset, SplitSet]:
    ds, splits = load_splits(job.entry, profile, progress)
    if job.train_size is not None:
        splits = splits.with_train_budget(job.train_size, profile.eval.subsample_seed)
    return ds, splits


def job_rerun_reason(job: Job, profile: Profile, out: Path) -> str:
    """Why ``job`` must run ('' when its result in ``out`` can be reused: :func:`benchmark.results.rerun_reason`)."""
    ds, splits = _job_data(job, profile)
    return rerun_reason(out, ds.name, job.method, job.seed, ds.fingerprint, splits.truth.sample.to_dict(),
                        resolved_settings(registry.get(job.method), profile.config))


def run_job(job: Job, profile: Profile, out: Path, force: bool = False, progress: bool = False) -> RunRecord | None:
    """Run one job and write its result; None when its result can be reused (unless ``force``)."""
    profile.register_variants()  # a worker process has only the packages' own variants
    if not force and not job_rerun_reason(job, profile, out):
        return None
    ds, splits = _job_data(job, profile, progress)
    cls = registry.get(job.method)
    settings = api.method_settings(cls, profile.config)
    truth = splits.truth
    base = dict(dataset=ds.name, method=job.method, seed=job.seed, table=_record_table(job.entry, cls),
                family=cls.family, in_paper=cls.in_paper, fingerprint=ds.fingerprint, n_test=len(truth.label),
                n_pos=int(truth.label.sum()), dataset_info=_dataset_info(job, ds, splits, profile),
                warnings=list(ds.warnings),
                config={"profile": profile.name, "overrides": list(profile.overrides), "settings": profile.config,
                        "method_settings": resolved_settings(cls, profile.config)},
                provenance=provenance() | {"method_package": api.package_of(cls)})
    why = missing_requirement(cls, splits) or _outside_budget(cls, settings, splits, job)
    if why:
        record = RunRecord(status="n/a", reason=why, **base)
        if main_process():
            write_run(out, record, None)
        return record
    try:
        ctx = api.MethodContext(seed=job.seed, settings=settings, progress=progress, cache_dir=str(profile.cache_dir))
        record, scores, method = _fit_and_score(cls, ctx, ds, splits, profile, base)
    except Exception as e:  # noqa: BLE001  (isolated: recorded with its traceback, the other jobs go on)
        record = RunRecord(status="failed", reason=one_line(e), **base)
        if main_process():
            write_run(out, record, None, log=traceback.format_exc())
        return record
    if main_process():
        write_run(out, record, pd.DataFrame({"lead_id": truth.ids, "score": scores, "label": truth.label,
                                             "weight": truth.weight}))
    method.close()  # after the write: a job killed before it reloads what it kept instead of fitting again
    return record


def _fit_and_score(cls: type[api.Method], ctx: api.MethodContext, ds: Dataset, splits: SplitSet, profile: Profile,
                   base: dict[str, Any]) -> tuple[RunRecord, np.ndarray, api.Method]:
    _seed_everything(ctx.seed)
    method = cls(ctx)
    tp = time.perf_counter()
    (train, valid, test), prep_info = prepare_inputs(cls, ds, splits, profile)
    check_memory(cls, ctx.settings, (train, valid, test))
    t0 = time.perf_counter()
    method.fit(train, valid)
    t1 = time.perf_counter()
    scores = np.asarray(method.score(test), dtype=np.float64).reshape(-1)
    t2 = time.perf_counter()
    if scores.shape != (len(test),) or not np.all(np.isfinite(scores)):
        raise DataError(f"method '{cls.name}' returned {scores.shape} scores "
                        f"({int((~np.isfinite(scores)).sum())} not finite) for {len(test)} test leads")
    metrics = evaluate(splits.truth.label, scores, profile.eval.bootstrap, seed=ctx.seed, weight=splits.truth.weight)
    t3 = time.perf_counter()
    # what the method read of the dataset's input view (its own declaration, checked by the contract)
    inputs = {"inputs": method.inputs(test.schema).to_dict()}
    diagnostics = method.diagnostics(test, scores, splits.truth.label)  # after scoring: the labels are the runner's
    record = RunRecord(status="ok", metrics={k: v.to_dict() for k, v in metrics.items()},
                       info=prep_info | method.run_info() | inputs | ({"diagnostics": diagnostics} if diagnostics else {}),
                       timings={"prepare_s": round(t0 - tp, 3), "fit_s": round(t1 - t0, 3), "score_s": round(t2 - t1, 3),
                                "metrics_s": round(t3 - t2, 3)}, **base)
    return record, scores, method


def one_line(e: BaseException) -> str:
    """An exception as one line: its type (unless it is one of ours, whose message says it all) and message."""
    text = (str(e).strip().splitlines() or [""])[0]
    return text if isinstance(e, LeadrankError) else f"{type(e).__name__}: {text}".rstrip(": ")


def prepare_inputs(cls: type[api.Method], ds: Dataset, splits: SplitSet,
                   profile: Profile) -> tuple[tuple[Split, Split, Split], dict[str, Any]]:
    """The splits a method sees (text embeddings attached where it asks for them) and facts to record."""
    if "h_text" in cls.requires:
        return attach_h_text(ds, splits, profile.config, profile.cache_dir)
    return (splits.train, splits.valid, splits.test), {}


# Memory a method's fit + score takes beyond the loaded splits, by family: (fixed MB, bytes per lead it
# reads: train leads up to its train cap, valid and test). Measured on the 1M industrial world with
# `bench/feature_store_scale.py --fit-memory` (results/bench/feature_store.jsonl, 2026-11-28): per family
# the largest slope and intercept of its methods, rounded up. ctr: xDeepFM, 278 B/lead + 801 MB (DeepFM:
# 41 + 112); classical: logreg's one-hot design, 854 B/lead (LightGBM: 380); llm: scoring, ~92 KB a lead
# (the prompts and token lists of every test lead at once; its fit reads a capped sample), with the tiny
# CPU backbone (a real one adds its weights). The rules and the oracles (under 10 B/lead) are not checked.
# (Each family's effects: leadrank_api.Family.)
FIT_MEMORY = {api.Family.CTR: (850, 300), api.Family.CLASSICAL: (50, 900), api.Family.LLM: (0, 95_000)}


def check_memory(cls: type[api.Method], settings: Any, parts: tuple[Split, Split, Split]) -> None:
    """Raise before a fit that would not fit in memory (the estimate from ``FIT_MEMORY`` and the split
    sizes against the memory available now: psutil, else /proc/meminfo). The job is then recorded as
    failed with a one-line reason naming both, and the other jobs go on, where a fit past the memory
    would be killed by the OS and take the whole run with it."""
    if cls.family not in FIT_MEMORY:
        return
    fixed_mb, per_lead = FIT_MEMORY[cls.family]
    train, valid, test = parts
    cap = cls.train_cap(settings)
    leads = min(len(train), len(train) if cap is None else cap) + len(valid) + len(test)
    need_mb = fixed_mb + per_lead * leads / 2 ** 20
    try:
        import psutil

        available_mb = psutil.virtual_memory().available / 2 ** 20
    except ImportError:
        with open("/proc/meminfo") as f:
            available_mb = next(int(line.split()[1]) / 1024 for line in f if line.startswith("MemAvailable:"))
    if need_mb > available_mb:
        raise LeadrankError(f"'{cls.name}' needs an estimated {need_mb:,.0f} MB to fit and score {leads:,} leads "
                            f"({cls.family}: {fixed_mb:,} MB + {per_lead:,} bytes a lead), but {available_mb:,.0f} "
                            "MB are available", hint="free memory, or score a sample of the test split: "
                            "eval.test_positives / eval.test_negatives")


NEEDS_TRAINING = "needs training leads (n = 0 is the zero-shot point: rules, oracles and the LLM rows' QA rule)"


def _outside_budget(cls: type[api.Method], settings: dict, splits: SplitSet, job: Job) -> str:
    """Why a learning-curve point is outside what this method can train on ('' when it is not): no training
    lead for a method that needs labels, or more leads than its own cap."""
    if job.train_size is None:
        return ""
    if len(splits.train) == 0 and not cls.zero_shot:
        return NEEDS_TRAINING
    cap = cls.train_cap(settings)
    if cap is None or len(splits.train) <= cap:
        return ""
    return f"trains on at most {cap:,} leads (its own subsample): past that a curve point is no matched budget"


def _record_table(entry: DatasetEntry, cls: type[api.Method]) -> str:
    """The table(s) a result is shown in: the entry's, or for a dataset of both tables (a user's spec,
    public data) the method's own paper tables, so a Table-2 rule does not appear as an extra row of Table 1
    (nor a user's data in the synthetic control table)."""
    return ",".join(t for t in cls.tables if t in api.PAPER_TABLES) if entry.table == "all" else entry.table


def _dataset_info(job: Job, ds: Dataset, splits: SplitSet, profile: Profile) -> dict[str, Any]:
    """What the job's data was; a learning-curve point adds the whole training split it was cut from
    (``budget_of``), so a reader sees where the budget holds more positives than its share."""
    whole = load_splits(job.entry, profile)[1].train if job.train_size is not None else None
    return {"world": job.entry.world, "leads": len(ds.frame), "split": ds.spec.split.kind,
            "n_train": len(splits.train), "n_valid": len(splits.valid), "n_test": len(splits.test),
            "n_train_pos": int(splits.train.y.sum()), "train_ids_sha256": ids_sha256(splits.train.ids),
            "test_positive_rate": float(splits.truth.label.mean()),
            "test_sample": splits.truth.sample.to_dict(),
            # what the data has decides which rows are n/a; the table footnote says so
            "has_text": splits.test.schema.has_text, "has_stage": splits.test.stage is not None,
            "has_outcomes": bool(ds.spec.outcomes.columns)} | (
        {} if whole is None else {"budget_of": {"n_train": len(whole), "n_train_pos": int(whole.y.sum())}})


def ids_sha256(ids: np.ndarray) -> str:
    """SHA-256 of the sorted lead ids, one per line as text: the same leads give the same hash on any
    machine and for any id dtype (a learning curve's proof that every method trained on the same leads)."""
    return hashlib.sha256("\n".join(map(str, np.sort(ids))).encode()).hexdigest()


def _seed_everything(seed: int) -> None:
    import random

    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


@contextmanager
def _backend(jobs: int, backend: str, scheduler: str | None) -> Iterator[None]:
    """joblib's backend for the jobs: loky (local processes, threads capped so N jobs share the
    cores without oversubscription), or dask / ray to go past one machine."""
    import joblib

    if backend == "loky":
        threads = max(1, (os.cpu_count() or 1) // max(jobs, 1))
        with joblib.parallel_config(backend="loky", n_jobs=jobs, inner_max_num_threads=threads):
            yield
    elif backend == "dask":
        from dask.distributed import Client, LocalCluster

        with ExitStack() as stack:
            target = scheduler or stack.enter_context(
                LocalCluster(n_workers=jobs, threads_per_worker=1, dashboard_address=":0"))
            stack.enter_context(Client(target))
            stack.enter_context(joblib.parallel_config(backend="dask", n_jobs=jobs))
            yield
    elif backend == "ray":
        import ray
        from ray.util.joblib import register_ray

        register_ray()
        ray.init(address=scheduler, ignore_reinit_error=True)
        with joblib.parallel_config(backend="ray", n_jobs=jobs):
            yield
    else:
        raise ConfigError(f"unknown --backend '{backend}'", hint="loky, dask or ray")


def run(profile: Profile, out: Path, methods: list[str] | None = None, seeds: list[int] | None = None,
        datasets: list[DatasetEntry] | None = None, force: bool = False, progress: bool = True,
        jobs: int = 1, backend: str = "loky", scheduler: str | None = None,
        train_size: int | None = None) -> list[RunRecord]:
    """Run every job of the plan; with ``jobs > 1`` (or a cluster backend) through joblib.
    ``train_size``: one point of a learning curve (:mod:`benchmark.curves`)."""
    plan_ = plan(profile, methods, seeds, datasets, train_size)
    progress = progress and main_process()
    if not plan_:
        raise ConfigError("nothing to run: no chosen method belongs to the table of any chosen dataset",
                          hint="see `leadrank list` for each method's tables")
    for entry in dict.fromkeys(j.entry for j in plan_):  # bad data fails here, before any result is written
        ds, _ = load_splits(entry, profile, progress)
        for warning in ds.warnings if progress else ():
            tqdm.write(f"warning: {warning}")
    todo = plan_ if force else _to_rerun(plan_, profile, Path(out), progress)
    records: list[RunRecord] = []

    def done(rec: RunRecord) -> None:
        bar.update()
        records.append(rec)
        if progress:
            auc = rec.metrics.get("auc", {}).get("value")
            tqdm.write(f"  {rec.dataset}/{rec.method}/seed{rec.seed}: "
                       + (f"AUC {auc:.4f}" if auc is not None else f"{rec.status} ({rec.reason})"))

    with results_lock(Path(out)) if main_process() else nullcontext(), \
            tqdm(total=len(todo), desc="jobs", unit="job", disable=not progress) as bar:
        # every job of todo runs (force=True): whether its result could be reused was decided above
        if jobs <= 1 and backend == "loky":
            for job in todo:
                done(run_job(job, profile, Path(out), force=True, progress=progress))
        else:
            from joblib import Parallel, delayed

            warm = [delayed(warm_h_text)(group, profile) for group in _h_text_inputs(todo)]
            runs = [delayed(run_job)(job, profile, Path(out), True, False) for job in _dispatch_order(todo)]
            with _backend(jobs, backend, scheduler):
                for rec in Parallel(return_as="generator_unordered")(warm + runs):
                    if rec is not False:  # False: a warm_h_text task, not a job
                        done(rec)
    return records


def _to_rerun(plan_: list[Job], profile: Profile, out: Path, progress: bool) -> list[Job]:
    """The jobs of the plan whose results cannot be reused; says why each finished one runs again
    and how many were reused."""
    reasons = {job: job_rerun_reason(job, profile, out) for job in plan_}
    todo = [job for job in plan_ if reasons[job]]
    if progress:
        for job in todo:
            if reasons[job] != NO_RESULT:
                point = f" (n_train {job.train_size:,})" if job.train_size not in (None, ALL_LEADS) else ""
                dataset = load_splits(job.entry, profile)[0].name
                tqdm.write(f"rerun {dataset}/{job.method}/seed{job.seed}{point}: {reasons[job]}")
        if len(todo) < len(plan_):
            tqdm.write(f"reused {len(plan_) - len(todo)} finished job(s) in {out}: same data, test sample and "
                       "settings (--force recomputes them)")
    return todo


def default_jobs(profile: Profile) -> int:
    """``--jobs`` when it is not given: as many jobs as the usable cores hold at the threads each job is
    set to use (the largest ``threads`` setting of the methods that run by default; null there means
    torch's default, every core, so one job). The quick profile pins every fit to one thread, so a
    2-core box runs two jobs at a time, with the same results as one at a time (each job's threads and
    seeds are its own). Under a distributed launch (an LLM row trained data-parallel) every process
    runs the same jobs in the same order: 1."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    per_job = {s.threads for cls in registry.all_methods().values() if cls.by_default
               for s in api.method_settings(cls, profile.config).values() if hasattr(s, "threads")}
    if None in per_job:
        return 1
    return max(1, cores // max(per_job, default=cores))


def _dispatch_order(jobs: list[Job]) -> list[Job]:
    """Dispatch order of parallel jobs: the longest first (LLM rows, then the other learned rows), and the
    rows that read h_text last, so the embedding (its own task, dispatched first) is usually ready. Within
    a kind the datasets take turns, so two LLM rows side by side come from two tables: the second row of a
    table then finds the first's frozen readout written instead of waiting for it (its lock)."""
    turns: dict[tuple[int, DatasetEntry], int] = {}
    keys = {}
    for job in jobs:
        cls = registry.get(job.method)
        kind = 3 if "h_text" in cls.requires else {api.Family.LLM: 0, api.Family.CTR: 1,
                                                    api.Family.CLASSICAL: 1}.get(cls.family, 2)
        turns[kind, job.entry] = turns.get((kind, job.entry), -1) + 1
        keys[job] = (kind, turns[kind, job.entry])
    return sorted(jobs, key=keys.__getitem__)


def _h_text_inputs(plan_: list[Job]) -> list[list[Job]]:
    """The jobs that read h_text, grouped by the embedding they share (dataset and training budget)."""
    groups: dict[tuple, list[Job]] = {}
    for j in plan_:
        if "h_text" in registry.get(j.method).requires:
            groups.setdefault((j.entry, j.train_size), []).append(j)
    return list(groups.values())


def warm_h_text(jobs: list[Job], profile: Profile) -> bool:
    """Compute (and cache) the h_text embedding that ``jobs`` (all of them to run) share, as a task of its
    own in a parallel run. Always False (so the caller tells it from a job's result).

    Run beside the other jobs instead of inside the first job that reads h_text, where the jobs after it
    would wait for it (the cache is locked while one process computes it: never computed twice)."""
    profile.register_variants()  # a worker process has loaded no provider yet
    ds, splits = _job_data(jobs[0], profile)
    if splits.test.schema.has_text:
        attach_h_text(ds, splits, profile.config, profile.cache_dir, progress=False)
    return False


@contextmanager
def results_lock(out: Path) -> Iterator[None]:
    """Hold ``out/.leadrank.lock`` for the run: a second runner on the same folder stops with a clear
    message instead of interleaving its writes. The OS releases the lock when the process dies."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise LeadrankError(f"another leadrank run ({holder}) is writing to {out}",
                                hint="wait for it to finish, or pass another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, started {time.strftime('%Y-%m-%d %H:%M:%S')}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)

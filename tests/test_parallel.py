"""Parallel and distributed runs, and resuming after a hard kill."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from benchmark import runner
from benchmark.contract import contract_profile, tiny_entry
from benchmark.results import all_runs

LEADRANK = Path(sys.executable).parent / "leadrank"


def _scores(out):
    return {(r.dataset, r.method, r.seed): pd.read_parquet(
        Path(out) / f"runs/{r.dataset}/{r.method}/seed{r.seed}.scores.parquet").score.tolist() for r in all_runs(out)}


def test_joblib_loky_matches_sequential(tmp_path, data_dir):
    profile = contract_profile(data_dir)
    entries = [tiny_entry("table2")]
    runner.run(profile, tmp_path / "seq", methods=["logreg", "funnel_recency"], datasets=entries, progress=False)
    runner.run(profile, tmp_path / "par", methods=["logreg", "funnel_recency"], datasets=entries, progress=False,
               jobs=2)
    assert _scores(tmp_path / "seq") == _scores(tmp_path / "par") and len(_scores(tmp_path / "par")) == 2


def test_a_parallel_run_computes_the_shared_h_text_embedding_once(tmp_path, data_dir):
    """Its own task computes the embedding while other jobs run; the jobs reading it wait on the cache's lock
    instead of computing it again, and score as a sequential run does."""
    profile = contract_profile(data_dir, ["h_text.dim=7"])  # a cache entry no other test has made
    methods, entries = ["wdl+h_text", "deepfm+h_text", "logreg"], [tiny_entry("table1")]
    par = runner.run(profile, tmp_path / "par", methods=methods, datasets=entries, progress=False, jobs=2)
    assert sorted((r.method, r.status) for r in par) == [
        ("deepfm+h_text", "ok"), ("logreg", "ok"), ("wdl+h_text", "ok")]
    readers = [r.info for r in par if r.method.endswith("+h_text")]
    assert [i["h_text_cache_hit"] for i in readers].count(False) <= 1  # computed by the warm task or one job
    assert len({i["h_text_compute_s"] for i in readers}) == 1  # ... and only once
    runner.run(profile, tmp_path / "seq", methods=methods, datasets=entries, progress=False, jobs=1)
    assert _scores(tmp_path / "par") == _scores(tmp_path / "seq")


def test_default_jobs_fill_the_cores_at_each_jobs_threads(monkeypatch):
    from benchmark.profile import load_profile

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(4)))
    assert runner.default_jobs(load_profile("quick")) == 4  # every fit on one thread
    assert runner.default_jobs(load_profile("quick", ["ctr.threads=2"])) == 2
    assert runner.default_jobs(load_profile("standard")) == 4  # every fit on one thread, the LLM rows too
    assert runner.default_jobs(load_profile("standard", ["llm.threads=null"])) == 1  # null: every core
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert runner.default_jobs(load_profile("quick")) == 1  # a distributed launch: every rank runs every job


@pytest.mark.slow
def test_parallel_jobs_start_with_the_llm_rows_of_each_table_in_turn_and_end_with_the_h_text_readers():
    """Two LLM rows side by side come from two tables (neither waits on the other's frozen readout), and
    the rows that read h_text come last (the embedding is then usually computed)."""
    from benchmark.profile import load_profile

    order = runner._dispatch_order(runner.plan(load_profile("standard")))
    families = [runner.registry.get(j.method).family for j in order]
    llm = [j for j, f in zip(order, families) if f == "llm"]
    assert families[:len(llm)] == ["llm"] * len(llm) and len(llm) >= 4
    assert [j.entry.name for j in llm[:3]] == ["benchmark", "industrial", "textual"]
    assert llm[3].entry.name == "benchmark" and llm[0].entry != llm[1].entry
    readers = ["h_text" in runner.registry.get(j.method).requires for j in order]
    assert readers == sorted(readers)  # every reader after every other job
    assert sorted(order, key=str) == sorted(runner.plan(load_profile("standard")), key=str)  # the same jobs


def test_dask_backend_runs_two_jobs_on_a_local_cluster(tmp_path, data_dir):
    profile = contract_profile(data_dir)
    recs = runner.run(profile, tmp_path, methods=["logreg", "oracle"], datasets=[tiny_entry("table1")],
                      progress=False, jobs=2, backend="dask")
    assert sorted(r.method for r in recs) == ["logreg", "oracle"]


def _profile_file(tmp_path, data_dir):
    prof = {"extend": "quick",
            "datasets": {"tiny-benchmark": {"world": "benchmark", "leads": 3000, "seed": 0, "table": "table1"},
                         "tiny-industrial": {"world": "industrial", "leads": 3000, "seed": 0, "table": "table2"}},
            "data_dir": str(data_dir), "seeds": [0, 1, 2], "eval": {"bootstrap": 50}}
    path = tmp_path / "profile.yaml"
    path.write_text(yaml.safe_dump(prof))
    return path


def test_sigkill_mid_run_resumes_to_the_same_results(tmp_path, data_dir):
    profile = _profile_file(tmp_path, data_dir)
    args = [LEADRANK, "run", "--profile", str(profile), "--methods", "logreg,funnel_recency,oracle"]
    subprocess.run(args + ["--out", tmp_path / "full"], check=True, capture_output=True)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(args + ["--out", killed], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and len(list(killed.glob("runs/*/*/seed*.json"))) < 2:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    n_before = len(list(killed.glob("runs/*/*/seed*.json")))
    assert 2 <= n_before < 12, "the kill should land mid-run"
    subprocess.run(args + ["--out", killed], check=True, capture_output=True)
    assert _scores(killed) == _scores(tmp_path / "full")
    assert (killed / "table2.md").read_text() == (tmp_path / "full" / "table2.md").read_text()
    assert not list(killed.rglob("*.tmp"))


@pytest.mark.parametrize("bad", ["0", "-1", "two"])
def test_jobs_must_be_a_positive_number(bad, capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit) as e:
        main(["run", "--jobs", bad])
    assert e.value.code == 2 and f"'{bad}' is not a number of jobs (>= 1)" in capsys.readouterr().err

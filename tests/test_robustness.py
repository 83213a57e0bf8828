"""A run survives its parts: a failing method, a second runner, a rerun, a bad results folder."""

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import leadrank_api as api
from benchmark import results, runner, tables
from benchmark.cli import main
from benchmark.contract import contract_profile, tiny_entry
from benchmark.profile import load_profile
from feature_store.errors import ConfigError, DataError, LeadrankError
from leadrank_api import Method, register

BIN = Path(sys.executable).parent


@pytest.fixture
def boom():
    @register(name="_boom", family="rule", tables=("table2",), in_paper=False, description="raises in fit")
    class Boom(Method):
        def fit(self, train, valid):
            raise ValueError("the encoder got 0 feature(s)\nsecond line")
    yield Boom
    api.unregister("_boom")


def test_a_failing_method_is_recorded_and_the_other_jobs_run(tmp_path, data_dir, boom):
    profile, entry = contract_profile(data_dir), tiny_entry("table2")
    recs = runner.run(profile, tmp_path, methods=["_boom", "logreg", "oracle"], datasets=[entry], progress=False)
    status = {r.method: r.status for r in recs}
    assert status == {"_boom": "failed", "logreg": "ok", "oracle": "ok"}
    failed = json.loads(results.json_path(tmp_path, entry.name, "_boom", 0).read_text())
    assert failed["reason"] == "ValueError: the encoder got 0 feature(s)"
    log = results.log_path(tmp_path, entry.name, "_boom", 0).read_text()
    assert "Traceback" in log and "raise ValueError" in log
    assert not results.scores_path(tmp_path, entry.name, "_boom", 0).exists()
    tables.write_tables(tmp_path, with_plots=False)
    table = (tmp_path / "table2.md").read_text()
    assert re.search(r"\| _boom \*\(not in paper\)\* +\| failed +\|", table)
    assert "- failed — _boom *(not in paper)*: ValueError: the encoder got 0 feature(s) (seed 0; traceback: " \
           f"runs/{entry.name}/_boom/seed0.log)" in table
    # a rerun retries the failed job only; the fixed method then replaces the failure and its log
    boom.fit = lambda self, train, valid: self
    boom.score = lambda self, test: np.arange(len(test), dtype=float)
    again = runner.run(profile, tmp_path, methods=["_boom", "logreg", "oracle"], datasets=[entry], progress=False)
    assert [(r.method, r.status) for r in again] == [("_boom", "ok")]
    assert not results.log_path(tmp_path, entry.name, "_boom", 0).exists()


def test_the_command_exits_non_zero_with_a_summary_of_failed_jobs(tmp_path, data_dir, boom, capsys):
    prof = tmp_path / "p.yaml"
    prof.write_text(f"extend: quick\ndatasets: {{tiny-industrial: {{world: industrial, leads: 3000, seed: 0, "
                    f"table: table2}}}}\ndata_dir: {data_dir}\neval: {{bootstrap: 50}}\n")
    # --jobs 1: _boom is registered in this process only, not in a parallel run's worker processes
    code = main(["run", "--profile", str(prof), "--methods", "_boom,oracle", "--out", str(tmp_path / "res"),
                 "--jobs", "1"])
    err = capsys.readouterr().err
    assert code == 1
    assert "failed: tiny-industrial/_boom/seed0: ValueError: the encoder got 0 feature(s)" in err
    assert "1 of 2 job(s) failed" in err and (tmp_path / "res/table2.md").is_file()


def test_a_rerun_says_what_it_reused(tmp_path, data_dir, capsys):
    profile, entry = contract_profile(data_dir), tiny_entry("table2")
    runner.run(profile, tmp_path, methods=["oracle"], datasets=[entry], progress=False)
    assert runner.run(profile, tmp_path, methods=["oracle"], datasets=[entry], progress=True) == []
    captured = capsys.readouterr()
    assert "reused 1 finished job(s)" in captured.out + captured.err


def test_a_second_runner_on_the_same_folder_stops(tmp_path, data_dir):
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from benchmark.runner import results_lock\n"
        f"with results_lock(Path({str(tmp_path)!r})):\n    print('held', flush=True); time.sleep(60)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(LeadrankError, match=r"another leadrank run \(pid \d+, started .*\) is writing to"):
            runner.run(contract_profile(data_dir), tmp_path, methods=["oracle"], datasets=[tiny_entry("table2")],
                       progress=False)
    finally:
        holder.kill()
        holder.wait()
    assert runner.run(contract_profile(data_dir), tmp_path, methods=["oracle"], datasets=[tiny_entry("table2")],
                      progress=False)  # the lock died with its process


@pytest.mark.parametrize("make", ["missing", "empty"])
def test_tables_on_a_missing_or_empty_folder_is_one_line_and_writes_nothing(tmp_path, make, capsys):
    folder = tmp_path / "res"
    if make == "empty":
        folder.mkdir()
    for argv in (["tables", "--results", str(folder)], ["tables", "--check", "--results", str(folder)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and ("does not exist" in err or "no result files" in err)
    assert not folder.exists() if make == "missing" else list(folder.iterdir()) == []


def test_results_of_a_newer_format_are_refused(tmp_path, data_dir):
    runner.run(contract_profile(data_dir), tmp_path, methods=["oracle"], datasets=[tiny_entry("table2")],
               progress=False)
    jp = results.json_path(tmp_path, "tiny-industrial", "oracle", 0)
    jp.write_text(json.dumps({**json.loads(jp.read_text()), "format_version": results.FORMAT_VERSION + 1}))
    with pytest.raises(DataError, match="written by a newer leadrank-bench"):
        tables.render_all(tmp_path)


def test_a_dataset_name_that_would_write_outside_the_results_folder_is_refused():
    with pytest.raises(ConfigError, match=r"'../../elsewhere' is not a plain folder name"):
        load_profile("quick", ["datasets={../../elsewhere: {world: benchmark, leads: 100, table: table1}}"])


def test_debug_is_accepted_after_the_subcommand(tmp_path):
    run = subprocess.run([BIN / "leadrank", "tables", "--results", tmp_path / "nope", "--debug"],
                         capture_output=True, text=True)
    assert run.returncode == 1 and "Traceback" in run.stderr and "does not exist" in run.stderr

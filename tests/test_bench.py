"""bench/README.md's table is what bench/render.py makes of results/bench/*.jsonl (issue 17); fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench_scripts import load_bench

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def render():
    return load_bench("render")


def test_readme_table_matches_the_jsonl_files(render):
    assert render.main(["--check"]) == 0, "run: .venv/bin/python bench/render.py"


def test_every_jsonl_line_names_its_bench_and_machine(render):
    for bench, lines in render.load().items():
        assert lines, f"results/bench/{bench}.jsonl is empty"
        for line in lines:
            assert line["bench"] == bench
            assert {"cpu", "cores"} <= set(line["machine"]), bench
            assert line["commit"] and line["time"]


def _rows(text: str, bench: str) -> list[str]:
    """Table rows whose Bench cell is ``bench``."""
    return [r for r in text.splitlines() if r.startswith("|") and r.split("|")[2].strip() == bench]


def _line(bench: str, **figures) -> str:
    machine = {"cpu": "test cpu", "cores": 2}
    return json.dumps({"bench": bench, "time": "2026-01-01T00:00:00+0000", "commit": "abc1234",
                       "machine": machine, **figures})


def test_quick_profile_row_comes_from_its_jsonl(render, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{render.START}\nstale\n{render.END}\nafter\n")
    empty = tmp_path / "results"
    empty.mkdir()
    assert render.main(["--readme", str(readme), "--results", str(empty)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith("after\n") and "stale" not in text
    assert text.count(render.NOT_YET) >= 6  # every bench without a line says so
    quick = _rows(text, "quick profile")
    assert len(quick) == 1 and render.NOT_YET in quick[0]

    (empty / "quick_profile.jsonl").write_text(
        _line("quick_profile", total_s=700.0, fresh_clone=True, goals={"total_s": 600},
              phases_s={"generate": 10.0, "h_text_embedding": 200.0, "llm_jobs": 400.0, "other_jobs": 90.0})
        + "\n" + _line("quick_profile", total_s=540.0, goals={"total_s": 600},
                       phases_s={"generate": 10.0, "h_text_embedding": 100.0, "llm_jobs": 350.0,
                                 "other_jobs": 80.0}) + "\n")
    assert render.main(["--readme", str(readme), "--results", str(empty), "--check"]) == 1
    assert render.main(["--readme", str(readme), "--results", str(empty)]) == 0
    [row] = _rows(readme.read_text(), "quick profile")
    assert "540 s" in row and "≤ 600 s" in row and "| yes " in row  # the latest line wins
    assert "llm_jobs 350 s" in row and "h_text_embedding 100 s" in row
    assert render.main(["--readme", str(readme), "--results", str(empty), "--check"]) == 0


def test_the_standard_profile_row_comes_from_its_own_jsonl(render, tmp_path):
    [row] = _rows(render.table(tmp_path), "standard profile")
    assert render.NOT_YET in row and "≤ 7200 s" in row
    (tmp_path / "standard_profile.jsonl").write_text(
        _line("standard_profile", total_s=9100.0, jobs=1, goals={"total_s": 7200},
              phases_s={"generate": 60.0, "h_text_embedding": 70.0, "llm_jobs": 8000.0, "other_jobs": 900.0}) + "\n")
    (tmp_path / "quick_profile.jsonl").write_text(
        _line("quick_profile", total_s=500.0, jobs=2, goals={"total_s": 600}, phases_s={}) + "\n")
    [row] = _rows(render.table(tmp_path), "standard profile")
    assert "9100 s" in row and "| **no** " in row and "test cpu" in row and "llm_jobs 8000 s" in row
    [quick] = _rows(render.table(tmp_path), "quick profile")
    assert "500 s" in quick  # each profile's row reads its own file
    (tmp_path / "standard_profile.jsonl").write_text(
        _line("standard_profile", total_s=7000.0, jobs=2, goals={"total_s": 7200}, overrides=["llm.threads=1"],
              phases_s={"llm_jobs": 9000.0}) + "\n")
    [row] = _rows(render.table(tmp_path), "standard profile")
    assert "7000 s" in row and "| yes " in row and "(2 job(s) at a time)" in row
    assert "they overlap" in row and "--set llm.threads=1" in row  # what the run changed is in sight


def test_a_missed_goal_is_marked(render, tmp_path):
    (tmp_path / "metrics.jsonl").write_text(_line(
        "metrics", leads=2_000_000, resamples=1000, ratio=250.0, bootstrap_s=100.0, roc_auc_s=0.4,
        peak_rss_mb=9000, goals={"ratio": 100}) + "\n")
    row = next(r for r in render.table(tmp_path).splitlines() if "roc_auc_score" in r)
    assert "**no**" in row and "≤ 100" in row


def test_parallel_and_sequential_quick_runs_each_keep_a_row(render, tmp_path):
    phases = {"generate": 3.0, "h_text_embedding": 500.0, "llm_jobs": 500.0, "other_jobs": 200.0}
    (tmp_path / "quick_profile.jsonl").write_text("\n".join(
        _line("quick_profile", total_s=t, jobs=j, goals={"total_s": 600}, phases_s=phases)
        for t, j in ((1000.0, 1), (590.0, 2), (650.0, 2))) + "\n")
    rows = _rows(render.table(tmp_path), "quick profile")
    assert len(rows) == 2 and "2 parallel jobs" in rows[0] and "650 s" in rows[0] and "**no**" in rows[0]
    assert "one job at a time" in rows[1] and "1000 s" in rows[1] and "they overlap" not in rows[1]


def test_a_big_epoch_line_does_not_replace_the_deepfm_ratio(render, tmp_path):
    ratio = dict(model="DeepFM", profile="quick", dataset="benchmark", train_leads=100, epochs=2, repeats=2,
                 suite_s=2.1, bare_s=2.0, ratio=1.05, goals={"ratio": 1.1})
    big = dict(model="DeepFM", measure="big_epoch", leads=6_140_000, train_leads=3_900_000, valid_leads=600_000,
               fit_s=700.0, peak_rss_mb=12_000, train_leads_per_s=5571, load_split_s=210.0, torch_threads=1,
               batch_size=256)
    (tmp_path / "ctr_overhead.jsonl").write_text(_line("ctr_overhead", **ratio) + "\n" + _line("ctr_overhead", **big))
    rows = _rows(render.table(tmp_path), "CTR harness")
    assert any("1.050" in r and "| yes " in r for r in rows)
    assert any("6.14M industrial world" in r and "fit 700 s, peak RSS 12,000 MB" in r for r in rows)


def test_the_quick_and_the_340k_ratios_each_keep_a_row(render, tmp_path):
    def ratio(profile, value):
        return _line("ctr_overhead", model="xDeepFM", profile=profile, dataset="benchmark", train_leads=100,
                     epochs=1, repeats=2, suite_s=2.0 * value, bare_s=2.0, ratio=value, goals={"ratio": 1.1})
    (tmp_path / "ctr_overhead.jsonl").write_text("\n".join([ratio("standard", 1.2), ratio("quick", 1.03)]) + "\n")
    rows = [r for r in _rows(render.table(tmp_path), "CTR harness") if "xDeepFM" in r]
    assert len(rows) == 2
    assert "quick 'benchmark'" in rows[0] and "1.030" in rows[0] and "| yes " in rows[0]
    assert "340k 'benchmark' world, standard" in rows[1] and "1.200" in rows[1] and "**no**" in rows[1]
    deepfm_340k = "DeepFM: suite fit / bare deepctr-torch fit (340k 'benchmark' world, standard)"
    assert any(deepfm_340k in r and "not yet measured" in r for r in _rows(render.table(tmp_path), "CTR harness"))


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "bench").glob("*.py")
                                          if not p.name.startswith("_") and p.name != "render.py"))
def test_every_bench_starts_in_the_venv(script):
    """Each bench's imports resolve and its options parse (what a fresh clone has after ./run_tests.sh)."""
    done = subprocess.run([sys.executable, str(ROOT / "bench" / script), "--help"], capture_output=True, text=True,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout


def test_the_committed_lora_layers_report_is_what_its_runs_say(monkeypatch):
    """results/standard/ablations/lora_layers.md (the AUC effect of top-k LoRA, issue 15) is what
    bench/lora_layers_auc.py renders from the committed runs, and both rows had equal exposure."""
    from benchmark.profile import load_profile
    from benchmark.results import all_runs

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    module = load_bench("lora_layers_auc")
    out = ROOT / "results" / "standard" / "ablations"
    runs = {r.method: r for r in all_runs(out) if r.seed == 0 and r.status == "ok"}
    text = module.report(out, runs[module.TOP_K], runs[module.ALL_BLOCKS], load_profile("standard").eval.bootstrap,
                         ".venv/bin/python bench/lora_layers_auc.py --profile standard --seed 0")
    assert (out / "lora_layers.md").read_text() == text
    assert "same training leads yes, same batches in the same order yes" in text
    assert "| asllr_ce          | top 8" in text and "| asllr_ce_lora_all | every block" in text


def test_the_llm_cache_rows_come_from_its_latest_standard_line(render, tmp_path):
    """Speed-ups and the score difference of bench/llm_cache.py; a line of another profile is not the figure."""
    assert sum(render.NOT_YET in r for r in _rows(render.table(tmp_path), "LLM cache")) == 3

    def line(profile, auc_fp16):
        totals = {"compute_s": 100.0, "train_s": 80.0, "score_s": 20.0, "wall_s": 120.0, "cpu_s": 200.0}
        faster = {**totals, "compute_s": 40.0, "speedup": 2.5, "wall_speedup": 2.0, "cpu_speedup": 2.2}
        return _line("llm_cache", profile=profile, backbone="smollm2-135m", lora_layers=8, threads=None,
                     train_leads=8, test_leads=16, prompt_tokens_mean=301.0,
                     rows={"off": totals, "fp16": faster, "speedup": 2.5, "wall_speedup": 2.0, "cpu_speedup": 2.2,
                           "cache_hits": 70, "cache_misses": 48, "cache_size_mb": 25.0},
                     epochs={"epochs": 3, "off": totals, "fp16": {**faster, "speedup": 1.8},
                             "fp32": {**faster, "speedup": 1.7}, "cache_hits_fp16": 16},
                     score_difference={"fp16": {"max_abs_score": 0.002, "max_abs_auc": auc_fp16},
                                       "fp32": {"max_abs_score": 1e-6, "max_abs_auc": 0.0}},
                     load_avg_1min=[3.5, 4.0], goals={"max_abs_auc": 0.001})
    (tmp_path / "llm_cache.jsonl").write_text("\n".join([line("standard", 0.004), line("standard", 0.0),
                                                         line("quick", 0.5)]) + "\n")
    speed, epochs, diff = _rows(render.table(tmp_path), "LLM cache")
    assert "five LLM rows" in speed and "| 2.50 " in speed and "70 hits, 48 misses, 25 MB on disk" in speed
    assert "shared box (1-min load 3.5 → 4 on 2 cores)" in speed
    assert "3 epochs" in epochs and "| 1.80; 1.70 " in epochs
    assert "| 0; 0 " in diff and "≤ 0.001" in diff and "| yes " in diff  # the latest standard line, not quick's


def test_training_flops_count_the_backward_only_where_it_runs():
    """bench/llm_throughput.py's training FLOPs: LoRA in every block = 4 x the forward's 2NT; top-k LoRA
    runs the input-gradient backward through k of n blocks only; a trained backbone adds its weight gradients."""
    from types import SimpleNamespace

    module = load_bench("llm_throughput")

    def model(frozen):
        config = SimpleNamespace(num_hidden_layers=30)
        base = SimpleNamespace(config=config)
        return SimpleNamespace(frozen_blocks=frozen, lm=SimpleNamespace(get_base_model=lambda: base))

    lora_only = SimpleNamespace(train_backbone=False)
    assert module.train_flops(10, 3, model(0), lora_only) == 4 * 10 * 3
    assert module.train_flops(10, 3, model(22), lora_only) == pytest.approx(2 * 10 * 3 * (1 + 8 / 30))
    assert module.train_flops(10, 3, model(0), SimpleNamespace(train_backbone=True)) == 6 * 10 * 3


def test_the_standard_training_rate_is_held_against_half_of_matmul(render, tmp_path):
    def line(train_ratio, k):
        rate = {"leads_per_s": 1.0, "tokens_per_s": 300.0}
        return _line("llm_throughput", profile="standard", backbone="smollm2-135m", dtype="float32", threads=2,
                     prompt_tokens={"mean": 294}, padding_share={"train_random": 0.2, "train_bucketed": 0.0,
                                                                 "score_sorted": 0.0},
                     score={**rate, "ratio_to_gemm": 0.6}, train={**rate, "ratio_to_gemm": train_ratio},
                     train_time_shares={"matmul": 0.5, "lora_matmul": 0.1, "dropout_rng": 0.1, "attention": 0.1,
                                        "other": 0.2},
                     lora_layers={"blocks": 11, "k": k, "leads": 64, "epoch_s": {"every": [2.0], "top_k": [1.0]},
                                  "every_leads_per_s": 0.5, "top_k_leads_per_s": 1.0, "speedup": 1.25,
                                  "goals": {"speedup": 2.0}})
    for ratio, k, holds in ((0.406, 8, "| **no** "), (0.55, 3, "| yes ")):
        (tmp_path / "llm_throughput.jsonl").write_text(line(ratio, k) + "\n")
        rows = [r for r in _rows(render.table(tmp_path), "LLM") if "standard profile" in r]
        flops, topk = rows[1], rows[2]
        assert "train ≥ 0.5" in flops and holds in flops and "dropout masks 10%" in flops
        # the top-k goal (≥ 2) is for LoRA in a quarter of the blocks; 8 of 11 is context
        assert ("≥ 2" in topk) == (k == 3) and ("| **no** " in topk) == (k == 3)


def test_profile_timing_calls_a_checkout_fresh_only_when_it_holds_the_commit_and_the_venv(tmp_path):
    import subprocess

    from bench_scripts import load_bench

    fresh_clone = load_bench("profile_timing").fresh_clone

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)
    git("init", "-q")
    (tmp_path / ".gitignore").write_text(".venv/\ndata/\n__pycache__/\n*.egg-info/\n")
    (tmp_path / "run.py").write_text("print(1)\n")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "pkg.egg-info").mkdir()  # the bootstrap's editable install
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "run.pyc").write_text("x")
    assert fresh_clone(tmp_path)  # the commit, its venv and bytecode
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "world.parquet").write_text("x")
    assert not fresh_clone(tmp_path)  # a generated world or cache could be reused
    (tmp_path / "data" / "world.parquet").unlink()
    (tmp_path / "data").rmdir()
    (tmp_path / "run.py").write_text("print(2)\n")
    assert not fresh_clone(tmp_path)  # an uncommitted change
    git("checkout", "run.py")
    (tmp_path / "notes.txt").write_text("x")
    assert not fresh_clone(tmp_path)  # an untracked file

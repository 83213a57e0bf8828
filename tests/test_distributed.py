"""`accelerate launch` / torchrun: an LLM row trains data-parallel and only the first process writes.

No GPU is needed: torchrun starts two CPU processes and accelerate joins them over gloo, the
same code path as several GPUs over NCCL (gradients all-reduced after every backward)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.timeout(900)
def test_an_llm_row_trains_data_parallel_and_only_rank_0_writes(tmp_path, tiny_splits, data_dir):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    helper = Path(__file__).with_name("distributed_job.py")
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(helper), str(data_dir), str(tmp_path)], env=env, check=True, timeout=840,
                   cwd=Path(__file__).resolve().parents[1])
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["info"]["train_processes"] for r in ranks] == [2, 2]
    norms = [r["info"]["head_update_norms"] for r in ranks]
    assert set(norms[0]) == {"pointwise", "pairwise"} and all(v > 0 for v in norms[0].values())
    assert norms[0] == norms[1] and ranks[0]["auc"] == ranks[1]["auc"]  # gradients were all-reduced
    assert len(list((tmp_path / "results").glob("runs/*/*/seed0.json"))) == 1


def test_processes_after_the_first_write_nothing(tmp_path, tiny_splits, data_dir, monkeypatch):
    from benchmark import runner
    from benchmark.contract import contract_profile, tiny_entry

    monkeypatch.setenv("RANK", "1")
    record = runner.run_job(runner.Job(tiny_entry("table2"), "logreg", 0), contract_profile(data_dir), tmp_path)
    assert record.status == "ok" and not any(tmp_path.iterdir())

"""Run by test_distributed.py under ``torchrun --nproc_per_node 2``: one LLM row, trained data-parallel.

Each process writes what it trained (its run info and AUC) to ``<out>/rank<r>.json``, so the test can
check that both processes ended with the same model and that only the first wrote the result files."""

import json
import os
import sys
from pathlib import Path

from benchmark import runner
from benchmark.contract import contract_profile, tiny_entry

data_dir, out = Path(sys.argv[1]), Path(sys.argv[2])
profile = contract_profile(data_dir, ["llm.train_max_leads=96", "llm.threads=1"])
record = runner.run_job(runner.Job(tiny_entry("table2"), "asllr_hpro", 0), profile, out / "results")
(out / f"rank{os.environ['RANK']}.json").write_text(json.dumps({"info": record.info,
                                                                  "auc": record.metrics["auc"]["value"]}))

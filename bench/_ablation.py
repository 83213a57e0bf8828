"""What the ablation experiments share: run variants next to copies of the reference rows they are read against.

An ablation folder (``<results>/ablations/``) holds copies of the reference runs of
``<results>/runs/`` and the variants' own runs, so its tables and paired comparisons read
one folder, and the main tables never show a row the profile does not run by default.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmark import runner, tables
from benchmark.profile import DatasetEntry, Profile
from benchmark.results import run_dir


def run_beside(profile: Profile, results: Path, entry: DatasetEntry, references: tuple[str, ...],
               variants: list[str], seeds: list[int]) -> Path:
    """Copy ``references``' runs of ``entry`` from ``results`` into ``results/ablations``, run ``variants``
    there (finished runs are kept: rerun to resume), render that folder's tables and plots and return it."""
    out = Path(results) / "ablations"
    for name in references:
        source = run_dir(results, entry.name, name)
        missing = [s for s in seeds if not (source / f"seed{s}.json").is_file()]
        if missing:
            raise SystemExit(f"{source} has no finished run of seed(s) {missing}: run `leadrank run --profile "
                             f"{profile.name} --methods {','.join(references)} --seeds "
                             f"{','.join(map(str, seeds))}` first")
        shutil.copytree(source, run_dir(out, entry.name, name), dirs_exist_ok=True)
    runner.run(profile, out, methods=variants, datasets=[entry], seeds=seeds)
    tables.write_tables(out)
    return out

"""The committed results/ must be what `leadrank tables` renders from the committed run files.

A reviewer trusts results/table*.md without training anything; this fails as soon as a
table, significance.md or a run file is edited by hand or left stale after a rerun."""

from pathlib import Path

import pytest

from benchmark import tables

RESULTS = Path(__file__).resolve().parents[1] / "results"
COMMITTED = sorted(p.parent for p in RESULTS.glob("**/runs") if p.is_dir())


def test_results_are_committed():
    assert RESULTS in COMMITTED, "results/runs/ (the quick profile's run) is missing"


@pytest.mark.parametrize("out", COMMITTED, ids=lambda p: str(p.relative_to(RESULTS.parent)))
def test_committed_tables_match_committed_runs(out):
    assert tables.check_tables(out) == []

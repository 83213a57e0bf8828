"""Plots: written per dataset from the score files of a real (tiny) run, linked from the tables,
drawn with the metrics' tie rule, and left out of the table check."""

import numpy as np
import pytest
from matplotlib.image import imread

from benchmark import plots, runner, tables
from benchmark.contract import contract_profile, tiny_entry
from benchmark.metrics import point, top_k
from benchmark.plots import Curve, capture_curve, is_probability, reliability
from benchmark.results import all_runs, read_scores


@pytest.fixture(scope="module")
def plot_out(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("plots")
    runner.run(contract_profile(data_dir), out, methods=["logreg", "oracle", "funnel_recency"],
               datasets=[tiny_entry("table2")], progress=False)
    written = tables.write_tables(out)
    return out, written


def test_every_plot_is_a_png_per_dataset_and_linked_from_the_table(plot_out):
    out, written = plot_out
    md = (out / "table2.md").read_text()
    assert plots.links("tiny-industrial") in md
    for name in plots.PLOTS:
        path = plots.plot_dir(out, "tiny-industrial") / f"{name}.png"
        assert path in written and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        height, width, _ = imread(path).shape
        assert height > 300 and width > 300
        assert f"]({path.relative_to(out)})" in md  # the link resolves from the results folder


def test_plots_are_outside_the_table_check(plot_out):
    out, _ = plot_out
    roc = plots.plot_dir(out, "tiny-industrial") / "roc.png"
    roc.unlink()
    assert tables.check_tables(out) == []
    plots.write_plots(out)
    assert roc.is_file()


def test_capture_curve_reads_the_tables_figures_with_ties():
    rng = np.random.default_rng(0)
    y = (rng.random(2000) < 0.05).astype(int)
    s = np.round(rng.normal(size=2000) + y, 1)  # many ties, some cut by K
    called, captured = capture_curve(y, s)
    for pct in (0.1, 1.0, 5.0, 37.0):
        k = top_k(len(y), pct)
        hits = np.interp(k, called, captured)
        assert hits / y.sum() == pytest.approx(point(f"r_at_{pct}", y, s), abs=1e-12)
        assert hits / k == pytest.approx(point(f"p_at_{pct}", y, s), abs=1e-12)


def test_reliability_and_ece():
    rng = np.random.default_rng(1)
    p = rng.uniform(0, 0.2, 200_000)
    y = (rng.random(len(p)) < p).astype(int)
    predicted, observed, ece = reliability(y, p)
    assert len(predicted) == plots.N_BINS and ece < 0.005
    np.testing.assert_allclose(observed, predicted, atol=0.01)
    assert reliability(y, p / 2)[2] == pytest.approx(np.mean(p / 2), rel=0.05)  # halved: off by the mean
    tiny = reliability(np.array([0, 1, 0, 1]), np.array([0.1, 0.2, 0.3, 0.4]), n_bins=2)
    assert tiny[2] == pytest.approx(0.5 * abs(0.5 - 0.15) + 0.5 * abs(0.5 - 0.35))


def test_only_probabilities_enter_the_reliability_diagram(plot_out):
    out, _ = plot_out
    shown = {r.method: is_probability(Curve(r.method, r.family, read_scores(out, r)["score"].to_numpy(), 0.0))
             for r in all_runs(out)}
    assert shown["oracle"] and not shown["funnel_recency"]  # p_true is a probability; stage + recency is a rank
    assert not is_probability(Curve("rule", "rule", np.array([0.1, 0.5]), 0.0))  # a rule in [0, 1] is still a rank

"""Learning curves: every method at a size trains on the same leads; sizes are nested; caps are honoured."""

import json

import numpy as np
import pytest

from benchmark import curves, registry
from benchmark.contract import contract_profile, tiny_entry
from benchmark.runner import NEEDS_TRAINING, ids_sha256, load_splits
from feature_store.errors import DataError
from feature_store.sampling import MIN_TRAIN_POSITIVES, nested_sample


def test_train_budget_is_nested_stratified_and_leaves_test_alone(data_dir):
    _, splits = load_splits(tiny_entry("table1"), contract_profile(data_dir))
    small, large = splits.with_train_budget(300, 0), splits.with_train_budget(900, 0)
    assert len(small.train) == 300 and len(large.train) == 900
    assert set(small.train.ids) <= set(large.train.ids) and set(small.valid.ids) <= set(large.valid.ids)
    share = splits.train.y.mean()
    assert abs(large.train.y.mean() - share) < 1.5 / 900 and small.train.y.sum() >= 1
    assert (small.test.ids == splits.test.ids).all()
    assert splits.with_train_budget(10 ** 9, 0) is splits
    assert not np.array_equal(splits.with_train_budget(300, 1).train.ids, small.train.ids)


@pytest.fixture(scope="module")
def curve_out(tmp_path_factory, data_dir):
    out = tmp_path_factory.mktemp("curves")
    logreg = registry.get("logreg")
    patch = pytest.MonkeyPatch()
    patch.setattr(logreg, "train_cap", classmethod(lambda cls, settings: 500))  # as an LLM row's cap
    try:
        curves.run_curves(contract_profile(data_dir), out, [200, 800], methods=["logreg", "lightgbm", "oracle"],
                          datasets=[tiny_entry("table1")], progress=False)
    finally:
        patch.undo()
    return out


def _record(out, size, method):
    return json.loads((out / f"n{size}/runs/tiny-benchmark/{method}/seed0.json").read_text())


def test_every_method_at_a_size_trained_on_the_same_leads(curve_out):
    for size in (200, 800):
        infos = [_record(curve_out, size, m)["dataset_info"] for m in ("logreg", "lightgbm", "oracle")]
        assert {i["n_train"] for i in infos} == {size}
        assert len({i["train_ids_sha256"] for i in infos}) == 1 and len({i["n_train_pos"] for i in infos}) == 1
    assert _record(curve_out, 200, "logreg")["dataset_info"]["train_ids_sha256"] != \
        _record(curve_out, 800, "logreg")["dataset_info"]["train_ids_sha256"]


def test_a_method_is_not_run_past_its_training_cap(curve_out):
    assert _record(curve_out, 200, "logreg")["status"] == "ok"
    rec = _record(curve_out, 800, "logreg")
    assert rec["status"] == "n/a" and "at most 500 leads" in rec["reason"]


def test_curves_md_and_plot_are_written_and_checked(curve_out):
    text = (curve_out / "curves.md").read_text()
    assert "| Method" in text and "200 (" in text and "800 (" in text and "Logistic regression" in text
    assert "n/a, trains on at most 500 leads (its own subsample): past that a curve point is no matched budget: " \
        "Logistic regression *(not in paper)* at 800." in text
    assert (curve_out / "tiny-benchmark" / "curves.png").stat().st_size > 1000
    assert curves.check_curves(curve_out) == []
    (curve_out / "curves.md").write_text(text + "edited\n")
    assert curves.check_curves(curve_out) == [str(curve_out / "curves.md")]
    curves.write_curves(curve_out)


def test_a_point_that_mixes_training_leads_is_refused(curve_out, tmp_path):
    import shutil

    mixed = tmp_path / "curves"
    shutil.copytree(curve_out, mixed)
    jp = mixed / "n200/runs/tiny-benchmark/lightgbm/seed0.json"
    rec = json.loads(jp.read_text())
    rec["dataset_info"]["train_ids_sha256"] = "0" * 64
    jp.write_text(json.dumps(rec))
    with pytest.raises(DataError, match="trained on different leads"):
        curves.render(mixed)


def test_small_budgets_keep_a_few_positives_and_stay_nested():
    y = np.zeros(10_000, dtype=np.int8)
    y[:140] = 1  # 1.4 %: pro rata, 100 leads would hold one positive
    kept = {n: nested_sample(y, n, 0, MIN_TRAIN_POSITIVES) for n in (0, 1, 2, 6, 100, 300, 1000)}
    assert len(kept[0]) == 0 and len(kept[1]) == 1
    assert [int(y[kept[n]].sum()) for n in (2, 6, 100, 300, 1000)] == [1, 5, 5, 5, 14]  # one negative left at 2
    assert all(len(kept[n]) == n for n in kept)
    sizes = sorted(kept)
    assert all(set(kept[a]) <= set(kept[b]) for a, b in zip(sizes, sizes[1:]))
    assert int(y[nested_sample(y, 100, 0)].sum()) == 1  # no floor: the share (the validation cut)
    few = np.zeros(1000, dtype=np.int8)
    few[:3] = 1
    assert int(few[nested_sample(few, 100, 0, MIN_TRAIN_POSITIVES)].sum()) == 3  # never more than the split has


def test_a_zero_budget_leaves_train_and_valid_empty(data_dir):
    _, splits = load_splits(tiny_entry("table1"), contract_profile(data_dir))
    zero = splits.with_train_budget(0, 0)
    assert len(zero.train) == 0 and len(zero.valid) == 0 and (zero.test.ids == splits.test.ids).all()


@pytest.fixture(scope="module")
def small_out(tmp_path_factory, data_dir):
    """A curve with the zero-shot point and a 100-lead point: a learner, a rule, an oracle and an LLM row."""
    out = tmp_path_factory.mktemp("small_curves")
    curves.run_curves(contract_profile(data_dir), out, [0, 100], methods=["logreg", "stage_only", "oracle", "asllr_ce"],
                      datasets=[tiny_entry("table1")], progress=False)
    return out


def test_the_zero_shot_point_runs_what_needs_no_label(small_out):
    assert _record(small_out, 0, "logreg")["status"] == "n/a"
    assert _record(small_out, 0, "logreg")["reason"] == NEEDS_TRAINING
    llm = _record(small_out, 0, "asllr_ce")
    assert llm["status"] == "ok" and llm["info"]["scoring_rule"] == "qa"
    assert llm["info"]["train_exposure"]["leads"] == 0 and llm["info"]["optimizer_steps"] == 0
    for method in ("stage_only", "oracle"):  # label-free: the same scores at every budget
        assert _record(small_out, 0, method)["metrics"] == _record(small_out, 100, method)["metrics"]


def test_a_100_lead_point_trains_on_exactly_the_nested_100_leads(small_out, data_dir):
    _, splits = load_splits(tiny_entry("table1"), contract_profile(data_dir))
    budget = splits.with_train_budget(100, contract_profile(data_dir).eval.subsample_seed).train
    for method in ("logreg", "asllr_ce"):
        info = _record(small_out, 100, method)["dataset_info"]
        assert info["n_train"] == 100 and info["train_ids_sha256"] == ids_sha256(budget.ids)
        assert info["n_train_pos"] == int(budget.y.sum()) >= MIN_TRAIN_POSITIVES
        assert info["budget_of"] == {"n_train": len(splits.train), "n_train_pos": int(splits.train.y.sum())}
    llm = _record(small_out, 100, "asllr_ce")["info"]
    assert llm["train_leads"] == 100 and llm["train_exposure"]["leads"] == 100
    assert llm["train_exposure"]["positives"] == int(budget.y.sum()) and llm["scoring_rule"] == "pointwise"


def test_curves_md_renders_the_zero_shot_and_small_columns(small_out):
    text = (small_out / "curves.md").read_text()
    header = next(line for line in text.splitlines() if line.startswith("| Method"))
    positives = _record(small_out, 100, "logreg")["dataset_info"]["n_train_pos"]
    assert "| 0 (zero-shot)" in header and f"| 100 ({positives} pos)" in header
    logreg_row = next(line for line in text.splitlines() if line.startswith("| Logistic regression"))
    llm_row = next(line for line in text.splitlines() if line.startswith("| asLLR + L_CE"))
    assert logreg_row.split("|")[2].strip() == "n/a" and llm_row.split("|")[2].strip()[:2] == "0."
    assert f"n/a, {NEEDS_TRAINING}: Logistic regression *(not in paper)* at 0." in text
    assert "- 0 (zero-shot): no training lead." in text
    assert f"- At least {MIN_TRAIN_POSITIVES} positives per column" in text and "100 (5 positives, " in text
    assert curves.check_curves(small_out) == []
    assert (small_out / "tiny-benchmark" / "curves.png").stat().st_size > 1000



def test_curve_refuses_an_out_folder_that_holds_a_runs_tables(tmp_path, capsys):
    """`leadrank curve --out results` would spread n0/, n100/, ... and curves.md beside Table 1: refused
    (exit 2, before any job), naming the curves folder to use instead."""
    from benchmark.cli import main

    (tmp_path / "table1.md").write_text("## Table 1\n")
    assert main(["curve", "--out", str(tmp_path), "--train-sizes", "100"]) == 2
    err = capsys.readouterr().err
    assert "holds a run's tables" in err and str(tmp_path / "curves") in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table1.md"]

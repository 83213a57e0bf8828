"""Learning curves: every method at a size trains on the same leads; sizes are nested; caps are honoured."""

import json

import numpy as np
import pytest

from benchmark import curves, registry
from benchmark.contract import contract_profile, tiny_entry
from benchmark.runner import load_splits
from feature_store.errors import DataError


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

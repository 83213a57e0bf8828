"""The registry and the method contract — run on every registered method, today's and later ones."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

import leadrank_api as registry_api
from benchmark import registry
from benchmark.cli import main
from benchmark.contract import ContractError, check_method
from leadrank_api import Method, register

README = Path(__file__).resolve().parents[1] / "README.md"


# Every method that is a table row; the bases (`deepctr`, `asllr`) run through their variants, and
# the HPRO ablations differ from asllr_hpro in one hpro.* value each.
CONTRACT = sorted(n for n, m in registry.all_methods().items() if m.tables and m.by_default)


@pytest.mark.parametrize("name", CONTRACT)
def test_every_registered_method_passes_the_contract(name, data_dir):
    cls = registry.get(name)
    check_method(cls, data_dir, tables=cls.tables[:1])  # one table each keeps the suite short; `leadrank check`: all


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="already registered"):
        @register(name="logreg", family="rule", tables=("table1",), description="clash")
        class Clash(Method):
            pass


def test_contract_catches_a_method_that_peeks_at_test_labels(data_dir):
    @register(name="_peeker", family="rule", tables=("table1",), description="reads test labels")
    class Peeker(Method):
        def fit(self, train, valid):
            return self

        def score(self, test):
            try:
                return test.y.astype(float)
            except Exception:
                return np.zeros(len(test))
    try:
        with pytest.raises(ContractError, match="hidden|labels"):
            check_method(Peeker, data_dir)
    finally:
        registry_api.unregister("_peeker")


def test_contract_catches_nondeterminism_and_network(data_dir):
    @register(name="_random", family="rule", tables=("table1",), description="random scores")
    class Random(Method):
        def fit(self, train, valid):
            return self

        def score(self, test):
            return np.random.default_rng().random(len(test))

    @register(name="_online", family="rule", tables=("table1",), description="phones home")
    class Online(Method):
        def fit(self, train, valid):
            import socket
            socket.create_connection(("example.com", 80), timeout=1)
            return self
    try:
        with pytest.raises(ContractError, match="deterministic"):
            check_method(Random, data_dir)
        with pytest.raises(ContractError, match="network"):
            check_method(Online, data_dir)
    finally:
        registry_api.unregister("_random")
        registry_api.unregister("_online")


def test_readme_add_a_model_example_passes_the_readmes_leadrank_check(data_dir, capsys):
    text = README.read_text()
    code = re.search(r"<!-- add-a-model -->\s*```python\n(.*?)```", text, re.S).group(1)
    command = re.search(r"<!-- leadrank-check -->\s*```\n(.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) <= 16
    namespace: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), namespace)
        cls = registry.get("hist_gbdt")
        assert cls.tables == ("table1", "table2") and not cls.in_paper
        assert cls.params["hgb"].model_fields["max_iter"].default == 200
        program, *args = shlex.split(command)
        assert program == "leadrank" and main([*args, "--data-dir", str(data_dir)]) == 0
        said = capsys.readouterr().out
        assert "passed hist_gbdt on table1" in said and "passed hist_gbdt on table2" in said
    finally:
        registry_api.unregister("hist_gbdt")


def test_a_method_registered_without_in_paper_is_marked_not_in_paper():
    from benchmark.tables import table_rows

    @register(name="_plain", family="rule", tables=("table2",), description="a plugin's row")
    class Plain(Method):
        pass
    try:
        assert "_plain" not in {row.method for row in table_rows("table2", set())}  # no result: no row
        assert [row.label for row in table_rows("table2", {"_plain"}) if row.method == "_plain"] == \
            ["_plain *(not in paper)*"]
    finally:
        registry_api.unregister("_plain")


def test_stage_only_ranks_by_the_current_stage_alone_and_leaves_ties(tiny_splits):
    """The label-free reference row: deeper current stage first; leads of one stage tie (no recency)."""
    _, splits = tiny_splits
    rule = registry.get("stage_only")
    assert (rule.family, rule.in_paper, rule.tables) == ("rule", False, ("table1",))
    scores = rule.from_config({}).fit(splits.train, splits.valid).score(splits.test)
    np.testing.assert_array_equal(scores, splits.test.stage)
    assert len(np.unique(scores)) == len(np.unique(splits.test.stage)) < len(scores)
    assert not np.array_equal(np.argsort(scores, kind="stable"),
                              np.argsort(registry.get("funnel_recency").from_config({}).score(splits.test),
                                         kind="stable"))

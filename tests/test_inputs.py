"""One input view per dataset: every row reads all of it that its family can use, records what it
read, and the method contract checks the record against what the method actually read."""

import json

import numpy as np
import pandas as pd
import pytest

import leadrank_api as api
from benchmark import registry, runner, tables
from benchmark.contract import (ContractError, ReadLog, WatchedSplit, check_inputs, check_method, contract_profile,
                                tiny_entry)
from benchmark.runner import load_splits
from feature_store.schema import Inputs, Schema
from feature_store.split import Split

TABLE_ONLY = ("ctr", "classical")  # the families of learned table-only models


def declared(name: str, schema: Schema, profile) -> Inputs:
    cls = registry.get(name)
    return cls(api.MethodContext(settings=api.method_settings(cls, profile.config))).inputs(schema)


@pytest.fixture(scope="module")
def profile(data_dir):
    return contract_profile(data_dir)


@pytest.mark.parametrize("table", ["table1", "table2"])
def test_table_only_rows_of_a_table_read_the_same_columns_and_the_stage(table, profile):
    schema = load_splits(tiny_entry(table), profile)[1].test.schema
    rows = {m.name: declared(m.name, schema, profile) for m in registry.rows(table)}
    table_only = {n: i for n, i in rows.items() if registry.get(n).family in TABLE_ONLY and i.text == "none"}
    assert {"logreg", "lightgbm"} <= set(table_only) and len(table_only) >= (7 if table == "table1" else 4)
    assert {i.columns for i in table_only.values()} == {schema.view().columns}, "table-only rows read different columns"
    assert all(i.stage for i in table_only.values())
    # text readers see the same table part, and the stage, as well
    for name, i in rows.items():
        if i.text != "none":
            assert (i.columns, i.stage) == (schema.view().columns, True), name


def test_the_view_is_derived_once_from_the_schema(tiny_splits):
    ds, splits = tiny_splits
    schema = splits.test.schema
    assert schema.tabular == ds.spec.categorical + ds.spec.numeric  # missing-value flags read the same columns
    assert "current_car_age__missing" in schema.numeric and "current_car_age__missing" not in schema.view().columns
    assert schema.view() == Inputs(schema.tabular, stage=True, text="none")
    assert schema.view("prompt").text == "prompt" and "transcript" not in schema.view("prompt").columns
    assert set(schema.observable) == set(schema.tabular) | {ds.spec.time}
    assert schema.table_categorical[-1] == ("stage", len(schema.stage_order) + 1)


def test_the_funnel_rule_and_the_oracle_record_what_they_read(tiny_splits, profile):
    schema = tiny_splits[1].test.schema
    assert declared("funnel_recency", schema, profile) == Inputs(("days_since_last_activity",), stage=True)
    assert declared("oracle", schema, profile) == Inputs()
    rule = registry.get("funnel_recency").from_config({"funnel": {"recency_column": None}})
    assert rule.inputs(schema) == Inputs((schema.time_column,), stage=True)  # the time stands in for recency


def tiny_split(protected: bool = True) -> Split:
    schema = Schema(dataset="d", categorical=("a",), numeric=("x", "x__missing"), text=("t",),
                    cardinalities={"a": 3}, stage_order=("new", "won"), final_stage_order=(), groups={},
                    numeric_raw=("x",), time_column="when")
    return Split(name="test", schema=schema, ids=np.arange(3), time=np.zeros(3, "datetime64[s]"),
                 cat=np.ones((3, 1), np.int64), num=np.zeros((3, 2), np.float32),
                 raw=pd.DataFrame({"a": ["u", "v", "w"], "x": [1.0, 2.0, None], "t": ["hi", "", "yo"]}),
                 texts={"t": ["hi", "", "yo"]}, stage=np.array([0, -1, 1]), protected=protected)


def test_a_watched_split_logs_each_input_read_and_nothing_else():
    log = ReadLog()
    split = WatchedSplit.of(tiny_split(), log)
    part = split.take(np.array([0, 2]))  # copying is not reading
    assert (log.columns, log.stage, log.text) == (set(), False, set()) and part.log is log
    assert "a" in part.raw and list(part.raw.columns) == ["a", "x", "t"] and len(part) == 2  # names are free
    part.numeric("x")
    assert log.columns == {"x"}
    assert part.codes()[:, -1].tolist() == [1, 2] and log.columns == {"a", "x"} and log.stage
    split.raw.iloc[0]  # a whole-frame read: every column, the text column as raw text
    split.h_text
    assert log.text == {"prompt"}  # h_text is None here: nothing was read
    split.with_h_text(np.zeros((3, 2))).h_text
    split.time
    assert log.columns == {"a", "x", "when"} and log.text == {"prompt", "h_text"}
    with pytest.raises(Exception, match="hidden"):
        split.y  # the guard still holds on a watched split
    assert split.reads["labels"] == 1


def test_the_contract_fails_a_method_that_reads_other_inputs_than_it_declares(data_dir):
    @api.register(name="_two_columns", family="rule", tables=("table2",), description="reads two columns")
    class TwoColumns(api.Method):  # declares the whole table view (the default) but reads two columns
        def fit(self, train, valid):
            return self

        def score(self, test):
            return np.nan_to_num(test.numeric("age")) - np.nan_to_num(test.numeric("days_since_last_activity"))

    @api.register(name="_reads_text", family="rule", tables=("table2",), description="text, undeclared")
    class ReadsText(api.Method):
        def inputs(self, schema):
            return Inputs(("age",))

        def fit(self, train, valid):
            return self

        def score(self, test):
            return np.array([len(t) for t in test.texts["transcript"]], float) + np.nan_to_num(test.numeric("age"))

    try:
        with pytest.raises(ContractError, match=r"columns: reads \['age', 'days_since_last_activity'\], declares"):
            check_method(TwoColumns, data_dir)
        with pytest.raises(ContractError, match=r"text: reads \['prompt'\], declares \['none'\]"):
            check_method(ReadsText, data_dir)
        TwoColumns.inputs = lambda self, schema: Inputs(("age", "days_since_last_activity"))
        check_method(TwoColumns, data_dir)  # declared honestly: passes
    finally:
        api.unregister("_two_columns")
        api.unregister("_reads_text")


def test_a_column_outside_the_view_fails_the_contract(tiny_splits):
    schema = tiny_splits[1].test.schema
    with pytest.raises(ContractError, match=r"outside the input view.*\['p_true'\]"):
        check_inputs("x", Inputs(("p_true", "age")), ReadLog(columns={"age"}), schema)
    check_inputs("x", Inputs(("age",), stage=True), ReadLog(columns={"age"}, stage=True), schema)


def test_every_result_records_its_inputs_and_the_footnote_says_what_each_family_reads(tmp_path, profile):
    out = tmp_path / "res"
    runner.run(profile, out, methods=["logreg", "funnel_recency", "oracle"], datasets=[tiny_entry("table2")],
               progress=False)
    tables.write_tables(out)
    schema = load_splits(tiny_entry("table2"), profile)[1].test.schema
    rec = json.loads((out / "runs/tiny-industrial/logreg/seed0.json").read_text())
    assert rec["info"]["inputs"] == {"columns": sorted(schema.tabular), "stage": True, "text": "none"}
    funnel = json.loads((out / "runs/tiny-industrial/funnel_recency/seed0.json").read_text())
    assert funnel["info"]["inputs"] == {"columns": ["days_since_last_activity"], "stage": True, "text": "none"}
    md = (out / "table2.md").read_text()
    n = len(schema.tabular)
    assert f"- Inputs, classical: all {n} table columns + current stage.\n" in md
    assert "- Inputs, rule: days_since_last_activity + current stage.\n" in md
    assert "- Inputs, oracle: no observable input.\n" in md

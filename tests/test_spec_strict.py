"""Strict dataset specs: every mistake is one line naming the key and the spec file; post-outcome
columns, optional ids; the parser raises only the project's errors."""

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from crm_export import spec_dict, write_export
from feature_store.errors import LeadrankError, SpecError
from feature_store.spec import DatasetSpec, load_spec

BASE = dict(name="t", files=["x.csv"], id="id", time="t", label="y",
            features={"categorical": ["c"], "numeric": ["n"]}, outcomes={"final_stage": "fs"})


def _refused(path, **edit):
    spec = BASE | edit
    (path / "spec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(SpecError) as e:
        load_spec(path / "spec.yaml")
    message = str(e.value)
    assert "\n" not in message and f"file {path / 'spec.yaml'}" in message
    return message


@pytest.mark.parametrize("edit,fragment", [
    (dict(labels="y"), "unknown key 'labels' (did you mean 'label'? known: current_stage,"),
    (dict(split={"tset_fraction": 0.2}), "unknown key 'split.tset_fraction' (did you mean 'test_fraction'? known: "
                                         "gap_days, kind, seed, test_fraction, valid_fraction)"),
    (dict(outcomes={"final_stag": "fs"}), "unknown key 'outcomes.final_stag' (did you mean 'final_stage'?"),
    (dict(features={"categorical": ["c"], "numerc": ["n"]}), "unknown key 'features.numerc' (did you mean 'numeric'?"),
    (dict(numeric=["n"]), "'numeric' is not a top-level key: it belongs under 'features:' (check its indentation)"),
    (dict(test_fraction=0.2), "'test_fraction' is not a top-level key: it belongs under 'split:'"),
    (dict(split={"test_fraction": "0.3"}), 'split.test_fraction = "0.3": input should be a valid number'),
    (dict(split={"test_fraction": 1.5}), "split.test_fraction = 1.5: input should be less than 1"),
    (dict(split={"kind": "rnd"}), "split.kind = \"rnd\": input should be 'temporal' or 'random'"),
    (dict(features={"categorical": "c"}), 'features.categorical = "c": input should be a valid array'),
    (dict(files=[]), "files"),
    (dict(name=None), "missing required key 'name'"),
    (dict(delimiter=";;"), "delimiter"),
    (dict(generated_by={"generator": "g"}), "missing required key 'generated_by.version'"),
    (dict(features={"categorical": ["c"], "numeric": ["c"]}), "column 'c': listed twice, as categorical and numeric"),
    (dict(name="../elsewhere"), "is not a plain folder name"),
    (dict(post_outcome=["gift"], features={"numeric": ["gift"]}), "column 'gift': a post-outcome column is listed as "
                                                                   "a numeric feature; that would leak"),
    (dict(post_outcome=["churn_date"], current_stage="churn_date"),
     "a post-outcome column cannot be the current stage"),
    (dict(post_outcome=["y"]), "column 'y': a post_outcome column is never read"),
])
def test_each_spec_mistake_is_one_line_naming_key_and_file(tmp_path, edit, fragment):
    assert fragment in _refused(tmp_path, **edit)


@pytest.mark.parametrize("text,where", [("name: x\nfiles: [a.csv\nlabel: y\n", "line 3, column 6"),
                                        ("name: x\n  label: y\n", "line 2, column 8")])
def test_yaml_syntax_errors_give_line_and_column(tmp_path, text, where):
    (tmp_path / "spec.yaml").write_text(text)
    with pytest.raises(SpecError, match=f"spec.yaml: not valid YAML: {where}: "):
        load_spec(tmp_path / "spec.yaml")


@pytest.mark.parametrize("content,message", [(b"- a\n- b\n", "must be a YAML mapping"),
                                             (b"name: caf\xe9\n", "not UTF-8 text")])
def test_a_spec_that_is_not_a_mapping_or_not_utf8_is_refused(tmp_path, content, message):
    (tmp_path / "spec.yaml").write_bytes(content)
    with pytest.raises(SpecError, match=message):
        load_spec(tmp_path / "spec.yaml")


def test_a_date_as_a_key_is_a_spec_error(tmp_path):
    (tmp_path / "spec.yaml").write_text("name: x\nfiles: [a]\nlabel: y\n2024-01-01: 3\n")
    with pytest.raises(SpecError, match="unknown key '2024-01-01'"):
        load_spec(tmp_path / "spec.yaml")


def test_post_outcome_columns_are_never_read_and_the_summary_says_so(tmp_path):
    from feature_store.validate import check
    from crm_export import export_frame

    df = export_frame()
    df["Gift Amount"] = (df["Converted?"] == "Yes") * 100.0
    spec = spec_dict() | {"post_outcome": ["Gift Amount", "Churn Date"]}
    report = check(load_spec(write_export(tmp_path, df, spec)))
    assert "Gift Amount" not in report.ingested.frame and not report.errors
    summary = report.summary()
    assert "known only after scoring (post_outcome), never read: Gift Amount, Churn Date" in summary
    assert "never read: Owner Email" in summary and "Owner Email, Gift Amount" not in summary
    assert [str(w) for w in report.warnings] == [
        f"file {tmp_path / 'export.csv'}, column 'Churn Date': post_outcome names a column the data does not have "
        "(check its spelling: post_outcome keeps that column out of the features)"]


def test_an_export_without_id_uses_the_row_number(tmp_path):
    from feature_store.store import Dataset
    from feature_store.validate import check

    spec = spec_dict()
    del spec["id"]
    path = write_export(tmp_path, spec=spec)
    assert "the row number (0-based, in file order) is the id" in check(load_spec(path)).summary()
    ds = Dataset.load(load_spec(path))
    splits = ds.splits()
    ids = sorted([*splits.train.ids, *splits.valid.ids, *splits.test.ids])
    assert ids == list(range(len(ds.frame))) and (splits.truth.ids == splits.test.ids).all()
    assert (ds.frame["Lead Source"].to_numpy()[splits.test.ids] == splits.test.raw["Lead Source"].to_numpy()).all()


def test_round_trip_and_saved_spec_loads_back(tmp_path):
    spec = DatasetSpec.from_dict(BASE | {"post_outcome": ["gift"], "label_positive": "Yes", "na_values": [-1, "-"]},
                                 source="spec.yaml")
    assert spec.na_values == ("-1", "-") and spec.label_positive == ("Yes",)
    spec.save(tmp_path / "spec.yaml", header="# a header\n")
    assert (tmp_path / "spec.yaml").read_text().startswith("# a header\nname: t\n")
    again = load_spec(tmp_path / "spec.yaml")
    assert again.to_dict() == spec.to_dict() and again.post_outcome == ("gift",)


# ---- the parser raises only the project's errors ------------------------------------

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
keys = st.sampled_from(["name", "files", "id", "time", "label", "features", "categorical", "numeric", "split",
                        "kind", "test_fraction", "outcomes", "post_outcome", "groups", "dtypes", "label_positive",
                        "generated_by", "delimiter", "na_values"]) | st.text(max_size=6) | st.integers()
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                      max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(keys, values, max_size=8))
def test_random_specs_raise_only_leadrank_errors(d):
    try:
        DatasetSpec.from_dict(d, source="spec.yaml")
    except LeadrankError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(BASE) + ["split", "post_outcome", "groups", "dtypes", "label_positive"]), values)
def test_a_valid_spec_with_one_random_value_raises_only_leadrank_errors(key, value):
    try:
        DatasetSpec.from_dict(BASE | {key: value}, source="spec.yaml")
    except LeadrankError:
        pass


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_random_yaml_text_raises_only_leadrank_errors(tmp_path_factory, text):
    path = tmp_path_factory.getbasetemp() / "random-spec.yaml"
    path.write_text(text)
    try:
        load_spec(path)
    except LeadrankError:
        pass

"""Nothing falls over at scale (issue 17): splits hold no copy of the texts or the frame, models read the
split's encoded arrays without copying them, and a fit past the available memory fails alone, saying why."""

import json
import sys
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from baselines import deepctr_compat as dc
from baselines.gbdt import LightGBM
from benchmark import registry, results, runner
from benchmark.contract import contract_profile, tiny_entry
from feature_store.encoders import MISSING, _cat_codes
from feature_store.errors import LeadrankError
from feature_store.split import TextColumn


def _old_cat_strings(s: pd.Series) -> list[str]:
    """The per-value rule the vectorized encoder must reproduce."""
    return [MISSING if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)
            for v in s.tolist()]


@pytest.mark.parametrize("s", [
    pd.Series(["b", None, "a", "b"], dtype="str"), pd.Series(["b", None, "a"], dtype="string"),
    pd.Series([3, 1, 3]), pd.Series([2, None, 2], dtype="Int64"), pd.Series([True, False, True]),
    pd.Series([0.0, -0.0, np.nan, 1.5]), pd.Series([1, 1.0, "1", None], dtype=object)])
def test_category_codes_give_the_strings_of_every_value(s):
    codes, categories = _cat_codes(s)
    assert [categories[c] for c in codes] == _old_cat_strings(s)


def test_a_text_column_reads_rows_across_chunks_in_any_order():
    chunks = pa.chunked_array([pa.array(["a", None, "c"], pa.large_string()), pa.array(["d", "e"], pa.large_string())])
    column = pd.Series(pd.arrays.ArrowStringArray(chunks))
    rows = np.array([4, 0, 1, 3])
    texts = TextColumn.of(column, rows)
    assert list(texts) == ["e", "a", "", "d"] and len(texts) == 4 and texts[-1] == "d"
    assert list(texts.take(np.array([2, 0]))) == ["", "e"] and list(texts[1:3]) == ["a", ""]
    TextColumn.BLOCK, block = 3, TextColumn.BLOCK
    try:
        assert list(texts) == ["e", "a", "", "d"]  # blocks end mid-column
    finally:
        TextColumn.BLOCK = block


def test_splits_share_the_texts_and_hold_codes_once(tiny_splits):
    ds, s = tiny_splits
    for part in (s.train, s.valid, s.test):
        texts = part.texts["transcript"]
        assert isinstance(texts, TextColumn) and len(texts) == len(part)
        by_id = ds.frame.set_index(ds.spec.id)["transcript"].fillna("")
        assert list(texts) == by_id.loc[part.ids].tolist()
        assert "transcript" not in part.raw and list(part.raw.columns) == [*ds.spec.categorical, *ds.spec.numeric]
        codes = part.codes()
        assert codes is part.codes() and np.shares_memory(codes, part.cat) and codes.dtype == np.int16
        assert (codes[:, -1] == part.stage + 1).all() and (codes[:, :-1] == part.cat).all()
    sub = s.train.take(np.array([5, 1]))
    assert np.shares_memory(sub.codes(), sub.cat) and list(sub.texts["transcript"]) == [
        s.train.texts["transcript"][5], s.train.texts["transcript"][1]]


def test_ctr_inputs_are_views_and_lightgbm_reads_the_values_of_a_float64_matrix(tiny_splits):
    train = tiny_splits[1].train
    _, values = registry.get("deepfm").from_config({"ctr": {"epochs": 1}})._inputs(train)
    inputs = dc.float32_inputs(values)
    assert all(np.shares_memory(a, train.codes()) or np.shares_memory(a, train.num) for a in inputs.values())
    assert np.concatenate([a[:, None] for a in inputs.values()], axis=-1).dtype == np.float32  # as deepctr does
    x = LightGBM._features(train)
    assert x.dtype == np.float32
    assert (x.astype(np.float64) == np.hstack([train.codes().astype(np.float64), train.num.astype(np.float64)])).all()


def test_a_method_past_the_available_memory_fails_with_its_estimate_and_the_others_run(tmp_path, data_dir,
                                                                                         monkeypatch):
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=2 ** 20))
    profile, entry = contract_profile(data_dir), tiny_entry("table2")
    recs = runner.run(profile, tmp_path, methods=["logreg", "funnel_recency"], datasets=[entry], progress=False)
    assert {r.method: r.status for r in recs} == {"logreg": "failed", "funnel_recency": "ok"}
    reason = json.loads(results.json_path(tmp_path, entry.name, "logreg", 0).read_text())["reason"]
    fixed_mb, per_lead = runner.FIT_MEMORY["classical"]
    assert reason.startswith("'logreg' needs an estimated ") and "\n" not in reason
    assert f"(classical: {fixed_mb:,} MB + {per_lead:,} bytes a lead), but 1 MB are available" in reason


def test_without_psutil_the_available_memory_is_read_from_proc(tiny_splits, monkeypatch):
    if not open("/proc/meminfo").read().count("MemAvailable:"):
        pytest.skip("no /proc/meminfo")
    monkeypatch.setitem(sys.modules, "psutil", None)
    _, s = tiny_splits
    cls = registry.get("lightgbm")
    runner.check_memory(cls, {}, (s.train, s.valid, s.test))  # a few thousand leads fit
    monkeypatch.setitem(runner.FIT_MEMORY, "classical", (0, 2 ** 50))
    with pytest.raises(LeadrankError, match=r"'lightgbm' needs an estimated .* MB are available"):
        runner.check_memory(cls, {}, (s.train, s.valid, s.test))

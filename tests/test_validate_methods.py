"""`leadrank validate` fits every method a run would start, so it catches what `run` would crash on."""

import pytest
from crm_export import spec_dict, write_export

from benchmark import registry
from benchmark.smoke import fit_checks
from feature_store.spec import load_spec

SHAPES = {  # the spec's features and stage: one table shape per case
    "numeric-only": dict(features={"numeric": ["Age", "Web Visits"]}, current_stage=None, stage_order=None),
    "categorical-only": dict(features={"categorical": ["Lead Source", "Region"]}, current_stage=None,
                             stage_order=None),
    "text-only": dict(features={"text": ["Notes"]}, current_stage=None, stage_order=None),
    "everything": {},
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_every_method_fits_or_is_na_on_every_table_shape(tmp_path, shape):
    spec = {k: v for k, v in {**spec_dict(), **SHAPES[shape]}.items() if v is not None}
    spec.pop("dtypes") if "Opt Out" not in str(spec["features"]) else None
    checks = fit_checks(load_spec(write_export(tmp_path / "crm", spec=spec)), tmp_path / "data")
    failed = [str(c) for c in checks if c.status == "failed"]
    assert not failed, "\n".join(failed)
    by = {c.method: c for c in checks}
    assert set(by) == {n for n, m in registry.all_methods().items() if m.tables and m.by_default}
    assert by["logreg"].status == ("n/a" if shape == "text-only" else "ok")
    assert by["asllr_ce"].status == "ok"  # an LLM reads whatever the prompt holds
    if shape != "everything":
        assert by["funnel_recency"].status == "n/a" and "stage" in by["funnel_recency"].reason

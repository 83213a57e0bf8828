"""Portable fingerprints: a generated dataset is fingerprinted by its generator identity and spec, user data
by its bytes."""

import numpy as np
import yaml

from benchmark.profile import DatasetEntry
from benchmark.runner import resolve_dataset
from crm_export import write_export
from feature_store import ingest
from feature_store.spec import Generator, load_spec
from feature_store.synthetic import folder_name, identity, world_spec

WORLD = Generator(generator="leadrank-synthetic", version=1, world="industrial", leads=3000, seed=0)


def test_a_generated_dataset_is_fingerprinted_by_its_generator_not_its_bytes(tmp_path):
    path = write_export(tmp_path)
    user = load_spec(path)
    generated = user.model_copy(update={"generated_by": WORLD})
    before = ingest.read(user).fingerprint, ingest.read(generated).fingerprint
    with (tmp_path / "export.csv").open("a") as f:  # the same world regenerated on another CPU: other last bits
        f.write("\n")
    after = ingest.read(user).fingerprint, ingest.read(generated).fingerprint
    assert before[0] != after[0] and before[1] == after[1]
    other = generated.model_copy(update={"generated_by": WORLD.model_copy(update={"version": 2})})
    assert ingest.read(other).fingerprint != after[1]
    assert ingest.read(generated.model_copy(update={"name": "renamed"})).fingerprint != after[1]


def test_the_user_data_fingerprint_is_unchanged_by_the_new_optional_keys(tmp_path):
    """Committed results carry content fingerprints: a spec that sets none of the new keys hashes as before."""
    spec = load_spec(write_export(tmp_path))
    assert set(spec.to_dict()) == {"name", "files", "id", "time", "label", "features", "current_stage",
                                   "stage_order", "split", "dtypes", "label_positive"}
    old_style = yaml.safe_dump(spec.to_dict(), sort_keys=True).encode()
    assert ingest.read(spec).fingerprint == ingest.file_digest(spec.paths, old_style)


def test_a_rescaled_world_has_another_identity_and_fingerprint_the_built_in_one_keeps_its_own(tmp_path):
    """World parameters are part of the generator identity: a rescaled world is other data (another
    fingerprint, another folder); naming a world's own value changes nothing."""
    built_in = identity("benchmark", 3000, 0)
    assert identity("benchmark", 3000, 0, {"text_scale": 1.0, "stage_scale": 0.25}) == built_in
    assert "params" not in world_spec("benchmark", built_in).to_dict()["generated_by"]  # fingerprints kept
    fingerprints = {ingest.fingerprint(world_spec("benchmark", built_in), [])}
    for params in ({"text_scale": 4.0}, {"table_scale": 0.5}, {"stage_scale": 1.0}):
        rescaled = identity("benchmark", 3000, 0, params)
        assert rescaled != built_in and rescaled.params == params
        assert folder_name(rescaled) != folder_name(built_in)
        fingerprints.add(ingest.fingerprint(world_spec("benchmark", rescaled), []))
    assert len(fingerprints) == 4


def test_a_profile_that_rescales_a_world_gets_it_generated_anew(tmp_path):
    entry = DatasetEntry(name="w", table="table1", world="benchmark", leads=600, seed=0)
    plain = resolve_dataset(entry, tmp_path)
    rescaled = resolve_dataset(entry.model_copy(update={"text_scale": 0.0}), tmp_path)
    assert rescaled.fingerprint != plain.fingerprint
    assert load_spec(tmp_path / "benchmark-600-s0-text_scale0" / "spec.yaml").generated_by.params == {"text_scale": 0.0}
    # text effects off: the facts still appear in the transcripts, but both oracles agree
    frame = rescaled.frame
    assert np.allclose(frame.p_true, frame.p_true_table) and not np.allclose(plain.frame.p_true, plain.frame.p_true_table)
    assert (frame.transcript == plain.frame.transcript).all()  # the same leads: only the labels' law differs

"""Portable fingerprints: a generated dataset is fingerprinted by its generator identity and spec, user data
by its bytes."""

import yaml

from crm_export import write_export
from feature_store import ingest
from feature_store.spec import Generator, load_spec

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

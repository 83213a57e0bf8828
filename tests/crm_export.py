"""A small CRM export as a user would have it, for the ingestion and validation tests.

Its column names are not ours, categories are strings, times are ISO 8601 with
offsets, the label says "Yes"/"No", there is a free-text column, values are
missing here and there, and one column is not named by the spec at all.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

STAGES = ["New", "Contacted", "Demo"]


def export_frame(n: int = 800, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    stage = rng.choice(STAGES, n, p=[0.5, 0.3, 0.2])
    visits = rng.poisson(3, n)
    source = rng.choice(["web", "phone", "event", "partner"], n)
    wants_quote = rng.random(n) < 0.3
    logit = (-3.2 + 0.9 * (stage == "Contacted") + 1.8 * (stage == "Demo") + 0.3 * visits + 1.2 * wants_quote
             + 0.8 * (source == "event"))
    converted = rng.random(n) < 1 / (1 + np.exp(-logit))
    base = pd.Timestamp("2024-01-01T09:00:00")
    offsets = rng.choice(["+02:00", "-05:00", "Z", "+05:30"], n)
    times = [(base + pd.Timedelta(hours=6 * i)).strftime("%Y-%m-%dT%H:%M:%S") + o for i, o in enumerate(offsets)]
    notes = np.where(wants_quote, "Customer asked for a quote and a test drive date.",
                     "Left a voicemail, will call back next week.")
    age = rng.integers(20, 70, n).astype(object)
    age[rng.random(n) < 0.1] = ""
    region = rng.choice(["North", "South", "East", "West"], n).astype(object)
    region[rng.random(n) < 0.05] = ""
    notes = notes.astype(object)
    notes[rng.random(n) < 0.1] = ""
    return pd.DataFrame({
        "Lead ID": [f"L{i:05d}" for i in range(n)], "Created": times, "Converted?": np.where(converted, "Yes", "No"),
        "Lead Source": source, "Region": region, "Age": age, "Web Visits": visits,
        "Opt Out": rng.choice(["true", "false"], n), "Notes": notes, "Stage": stage,
        "Owner Email": [f"rep{i % 7}@example.com" for i in range(n)]})


def spec_dict(file: str = "export.csv") -> dict:
    return {
        "name": "my-crm", "files": [file], "id": "Lead ID", "time": "Created", "label": "Converted?",
        "label_positive": "Yes",
        "features": {"categorical": ["Lead Source", "Region"], "numeric": ["Age", "Web Visits", "Opt Out"],
                     "text": ["Notes"]},
        "dtypes": {"Opt Out": "bool"}, "current_stage": "Stage", "stage_order": STAGES}


def write_export(folder: Path, df: pd.DataFrame | None = None, spec: dict | None = None) -> Path:
    """export.csv and spec.yaml in ``folder``; returns the spec's path."""
    folder.mkdir(parents=True, exist_ok=True)
    (export_frame() if df is None else df).to_csv(folder / "export.csv", index=False)
    path = folder / "spec.yaml"
    path.write_text(yaml.safe_dump(spec_dict() if spec is None else spec, sort_keys=False))
    return path

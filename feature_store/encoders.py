"""Train-only encoders: categorical vocabularies with an OOV bucket, numeric scaling.

Fit on the training part only, then applied unchanged to valid and test, so no
statistic of a later split reaches a model.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

OOV = 0  # code of every category not seen in train (and of missing values unseen in train)
MISSING = "<missing>"


@dataclass
class TableEncoder:
    """Categoricals -> int codes (0 = OOV, 1.. = train vocabulary, missing is its own token);
    numerics -> float32, median-imputed and standardised, plus a missing flag per column
    that had missing values in train."""

    categorical: tuple[str, ...]
    numeric: tuple[str, ...]
    vocab: dict[str, dict[str, int]] = field(default_factory=dict)
    median: dict[str, float] = field(default_factory=dict)
    mean: dict[str, float] = field(default_factory=dict)
    std: dict[str, float] = field(default_factory=dict)
    flag_missing: tuple[str, ...] = ()

    def fit(self, df: pd.DataFrame) -> "TableEncoder":
        for col in self.categorical:
            values = _cat_strings(df[col])
            uniq = sorted(set(values))
            self.vocab[col] = {v: i + 1 for i, v in enumerate(uniq)}
        flags = []
        for col in self.numeric:
            x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            finite = x[np.isfinite(x)]
            med = float(np.median(finite)) if finite.size else 0.0
            filled = np.where(np.isfinite(x), x, med)
            self.median[col], self.mean[col] = med, float(filled.mean()) if filled.size else 0.0
            sd = float(filled.std()) if filled.size else 0.0
            self.std[col] = sd if sd > 0 else 1.0
            if finite.size < x.size:
                flags.append(col)
        self.flag_missing = tuple(flags)
        return self

    @property
    def cardinalities(self) -> dict[str, int]:
        """Number of codes per categorical column, OOV included (embedding table sizes)."""
        return {c: len(v) + 1 for c, v in self.vocab.items()}

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return self.numeric + tuple(f"{c}__missing" for c in self.flag_missing)

    def transform(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        cat = np.zeros((len(df), len(self.categorical)), dtype=np.int64)
        for j, col in enumerate(self.categorical):
            vocab = self.vocab[col]
            cat[:, j] = [vocab.get(v, OOV) for v in _cat_strings(df[col])]
        num = np.zeros((len(df), len(self.numeric_names)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            x = np.where(np.isfinite(x), x, self.median[col])
            num[:, j] = (x - self.mean[col]) / self.std[col]
        for k, col in enumerate(self.flag_missing):
            x = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=np.float64)
            num[:, len(self.numeric) + k] = ~np.isfinite(x)
        return cat, num


def _cat_strings(s: pd.Series) -> list[str]:
    """Categories as strings, missing values as one explicit token."""
    return [MISSING if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)
            for v in s.tolist()]

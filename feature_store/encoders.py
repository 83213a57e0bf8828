"""Train-only encoders: categorical vocabularies with an OOV bucket, numeric scaling.

Fit on the training part only, then applied unchanged to valid and test, so no
statistic of a later split reaches a model.

Both work on one column at a time and take the rows they encode (``rows``) from
the whole frame, so no copy of the frame (with its texts) is made: at 6M leads a
row-subset of the frame is gigabytes, one column of it megabytes.
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

    def fit(self, df: pd.DataFrame, rows: np.ndarray | None = None) -> "TableEncoder":
        """Fit on the rows ``rows`` of ``df`` (all rows when None)."""
        for col in self.categorical:
            _, categories = _cat_codes(_rows(df, col, rows))
            self.vocab[col] = {v: i + 1 for i, v in enumerate(sorted(set(categories)))}
        flags = []
        for col in self.numeric:
            x = _numbers(df, col, rows)
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
    def code_dtype(self) -> type:
        """int16 where every column has at most 2**15 codes, else int32.

        Every model casts the codes (to float32 for deepctr-torch, whose one concatenated input array
        int16 codes leave float32 while int32 would make it float64, so the CTR inputs can be views of
        the split's codes); int16 also halves the bytes. Widen before arithmetic that can pass 32767."""
        return np.int16 if max(self.cardinalities.values(), default=0) <= 2 ** 15 else np.int32

    @property
    def numeric_names(self) -> tuple[str, ...]:
        return self.numeric + tuple(f"{c}__missing" for c in self.flag_missing)

    def transform(self, df: pd.DataFrame, rows: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(codes as :attr:`code_dtype`, numerics) of the rows ``rows`` of ``df`` (all rows when None)."""
        n = len(df) if rows is None else len(rows)
        cat = np.zeros((n, len(self.categorical)), dtype=self.code_dtype)
        for j, col in enumerate(self.categorical):
            codes, categories = _cat_codes(_rows(df, col, rows))
            vocab = self.vocab[col]
            cat[:, j] = np.array([vocab.get(v, OOV) for v in categories], dtype=cat.dtype)[codes]
        num = np.zeros((n, len(self.numeric_names)), dtype=np.float32)
        for j, col in enumerate(self.numeric):
            x = _numbers(df, col, rows)
            x = np.where(np.isfinite(x), x, self.median[col])
            num[:, j] = (x - self.mean[col]) / self.std[col]
        for k, col in enumerate(self.flag_missing):
            num[:, len(self.numeric) + k] = ~np.isfinite(_numbers(df, col, rows))
        return cat, num


def _rows(df: pd.DataFrame, col: str, rows: np.ndarray | None) -> pd.Series:
    return df[col] if rows is None else df[col].iloc[rows]


def _numbers(df: pd.DataFrame, col: str, rows: np.ndarray | None) -> np.ndarray:
    return pd.to_numeric(_rows(df, col, rows), errors="coerce").to_numpy(dtype=np.float64)


def _cat_codes(s: pd.Series) -> tuple[np.ndarray, list[str]]:
    """(codes, categories) with ``categories[codes[i]]`` the i-th value as a string, missing values as
    one explicit token.

    Strings, integers and booleans are factorized (each distinct value has a distinct string); float
    and object columns are turned into strings value by value, since there values that compare equal
    can print differently (0.0 and -0.0, 1 and 1.0)."""
    if pd.api.types.is_float_dtype(s) or pd.api.types.is_complex_dtype(s) or pd.api.types.is_object_dtype(s):
        strings = _cat_strings(s.tolist())
        codes, uniques = pd.factorize(np.asarray(strings, dtype=object))
        return codes, list(uniques)
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    categories = _cat_strings(uniques.tolist())
    if (codes < 0).any():
        codes = np.where(codes < 0, len(categories), codes)
        categories.append(MISSING)
    return codes, categories


def _cat_strings(values: list) -> list[str]:
    """Categories as strings, missing values as one explicit token."""
    return [MISSING if v is None or (isinstance(v, float) and np.isnan(v)) or v is pd.NA else str(v)
            for v in values]

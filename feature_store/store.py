"""The feature store's last step: load a dataset by its spec, encode it, cut it into the splits models get.

Inside ``feature_store`` the data path runs one way, and so do the imports:
spec (:mod:`~feature_store.spec`) -> read (:mod:`~feature_store.ingest`) ->
check (:mod:`~feature_store.validate`) -> dataset (this module), whose row
indices come from :mod:`feature_store.sampling`, the one place a split or a
subsample is drawn (validation checks the very same cut). What it hands out is
described in :mod:`feature_store.schema` (what a method may read),
:mod:`feature_store.split` (the containers) and :mod:`feature_store.evaluation`
(which test leads are scored).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa

from feature_store.encoders import TableEncoder
from feature_store.evaluation import Truth, case_control
from feature_store.sampling import lead_ids, split_indices
from feature_store.schema import Schema
from feature_store.spec import DatasetSpec
from feature_store.split import Split, SplitSet, TextColumn
from feature_store.validate import check


class Dataset:
    """A dataset loaded through its spec. ``frame`` holds only the spec's columns."""

    def __init__(self, spec: DatasetSpec, frame: pd.DataFrame, fingerprint: str, warnings: tuple[str, ...] = ()):
        self.spec, self.frame, self.fingerprint, self.warnings = spec, frame, fingerprint, warnings

    @property
    def name(self) -> str:
        return self.spec.name

    @classmethod
    def load(cls, spec: DatasetSpec) -> "Dataset":
        """Read and validate; raises the first validation error (``leadrank validate`` lists them all)."""
        report = check(spec)
        report.raise_for_errors()
        return cls(spec, report.ingested.frame, report.ingested.fingerprint, tuple(map(str, report.warnings)))

    def split_indices(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Row indices of (train, valid, test) by the spec's split rule."""
        return split_indices(self.spec, self.frame)

    def splits(self, test_positives: int | None = None, test_negatives: int | None = None,
               subsample_seed: int = 0) -> SplitSet:
        """Encoded train/valid/test; test optionally a fixed-seed case-control sample
        (:class:`~feature_store.evaluation.EvalSample`).

        The sample depends only on the dataset, the two sizes and ``subsample_seed`` — never on
        a method or its seed — so every method of a table is scored on the same leads."""
        fit, valid, test = self.split_indices()
        sp, label = self.spec, self.frame[self.spec.label].to_numpy()
        test, sample = case_control(test, label[test], test_positives, test_negatives, subsample_seed)
        enc = TableEncoder(sp.categorical, sp.numeric).fit(self.frame, fit)
        schema = Schema(dataset=sp.name, categorical=sp.categorical, numeric=enc.numeric_names, text=sp.text,
                        cardinalities=enc.cardinalities, stage_order=sp.stage_order if sp.current_stage else (),
                        final_stage_order=sp.outcomes.final_stage_order, groups=sp.feature_groups(),
                        numeric_raw=sp.numeric, time_column=sp.time)
        ids = lead_ids(sp, self.frame)
        stage = _stage_depth(self.frame[sp.current_stage], sp.stage_order) if sp.current_stage else None
        texts = {c: TextColumn.arrow(self.frame[c]) for c in sp.text}  # once per column, shared by the splits
        parts = [self._make_split(name, idx, ids[idx], enc, schema, stage, texts, protected=(name == "test"))
                 for name, idx in (("train", fit), ("valid", valid), ("test", test))]
        pa.default_memory_pool().release_unused()  # Arrow's allocator keeps freed blocks (the takes') otherwise
        y = label[test].astype(np.int8)
        return SplitSet(*parts, truth=Truth(ids=parts[2].ids, label=y, weight=sample.weights(y), sample=sample))

    def _make_split(self, name: str, idx: np.ndarray, ids: np.ndarray, enc: TableEncoder, schema: Schema,
                    stage: np.ndarray | None, texts: dict[str, pa.ChunkedArray], protected: bool) -> Split:
        """The rows ``idx``, taken column by column from the frame (never the whole frame, whose texts
        stay where they are: ``texts`` reads them through :class:`TextColumn`)."""
        sp, frame = self.spec, self.frame

        def column(c: str | None) -> pd.Series | None:
            return frame[c].iloc[idx].reset_index(drop=True) if c else None

        def numbers(c: str | None) -> np.ndarray | None:
            return frame[c].to_numpy(dtype=np.float64)[idx] if c else None

        cat, num = enc.transform(frame, idx)
        codes = None
        if stage is not None:  # codes() as one array, ``cat`` a view of it
            codes = np.empty((len(idx), cat.shape[1] + 1), dtype=cat.dtype)
            codes[:, :-1], codes[:, -1] = cat, stage[idx] + 1
            cat, stage = codes[:, :-1], stage[idx]
        outcomes = None
        if sp.outcomes.columns:
            outcomes = pd.DataFrame({"final_stage": column(sp.outcomes.final_stage),
                                     "call_seconds": column(sp.outcomes.call_seconds)})
        time = frame[sp.time].to_numpy()[idx] if sp.time else np.zeros(len(idx), dtype="datetime64[ns]")
        return Split(
            name=name, schema=schema, ids=ids, time=time, cat=cat, num=num, _codes=codes,
            raw=frame[list(sp.categorical + sp.numeric)].iloc[idx].reset_index(drop=True),
            texts={c: TextColumn(chunks, idx) for c, chunks in texts.items()},
            stage=stage, _label=frame[sp.label].to_numpy()[idx].astype(np.int8), _outcomes=outcomes,
            _p_true=numbers(sp.p_true), _p_true_table=numbers(sp.p_true_table), protected=protected)


def _stage_depth(column: pd.Series, order: tuple) -> np.ndarray:
    """Each lead's current-stage depth in ``order`` (-1 where missing or not in it), int64."""
    codes, uniques = pd.factorize(column)
    depth = {s: i for i, s in enumerate(order)}
    lookup = np.array([depth.get(v, -1) for v in uniques.tolist()] + [-1], dtype=np.int64)
    return lookup[codes]

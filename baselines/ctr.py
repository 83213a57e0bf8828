"""The CTR baselines of both papers: six deepctr-torch models, with and without ``h_text``,
and the two Funnel+CTR variants of Table 2.

One class, :class:`DeepCTR`, drives every model from the store's encoded
features — the table part of the dataset's input view, as every table-only
model reads it: each categorical becomes a ``SparseFeat`` (train vocabulary +
the OOV code 0), and so does the current stage where the data has one
(``Split.codes``: depth + 1, unknown = 0 as a level of its own); each numeric
becomes a ``DenseFeat``, and in the ``+h_text`` rows the text embedding
``h_text`` one ``DenseFeat`` of its dimension. Its ``Options`` say which model
a row is, whether it reads ``h_text`` and how it uses the stage; the registered
rows are variants declared in ``baselines/variants.yaml``.

Paper settings for all: batch 256, embedding dim 8; epochs from the profile with
early stopping on validation AUC (restoring the best epoch's weights); every
other hyper-parameter is deepctr-torch's default, the same for all six.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from baselines import deepctr_compat as dc
from feature_store.errors import DataError
from feature_store.schema import Inputs, Schema
from feature_store.split import Split
from leadrank_api import Method, Params, register, torch_threads

NEEDS_SPARSE = {"xDeepFM", "AutoInt"}  # their interaction layers read categorical embeddings only


class CTRParams(Params):
    """The ``ctr:`` section of a profile, shared by every CTR row."""

    epochs: int = 5
    """Epochs at most; early stopping on validation AUC keeps the best one."""
    patience: int = 2
    """Epochs without a better validation AUC before stopping."""
    batch_size: int = 256
    """Leads per optimizer step (the papers: 256)."""
    embedding_dim: int = 8
    """Embedding size of every sparse feature (the papers: 8)."""
    threads: int = 1
    """Torch threads: 256-row batches gain little from more, and the count changes the floats."""


class CTROptions(Params):
    """What makes one CTR row what it is (fixed by its variant, never by a profile)."""

    model: Literal["WDL", "DeepFM", "xDeepFM", "DCN", "DCNMix", "AutoInt"] = "DeepFM"
    """The deepctr-torch model class."""
    h_text: bool = False
    """Read the lead's text embedding h_text as one dense input."""
    stage: Literal["input", "group"] = "input"
    """How every row uses the current stage: a categorical input, or also a hard grouping (Funnel+CTR two-stage)."""


@register(name="deepctr", family="ctr", params={"ctr": CTRParams}, in_paper=True,
          description="A deepctr-torch model on the table features (base of the CTR rows in baselines/variants.yaml)")
class DeepCTR(Method):
    """A deepctr-torch model on the lead's table features and current stage (+ ``h_text``).

    ``stage: group`` (Funnel+CTR two-stage): one DeepFM is trained on all train leads
    (per-stage models would see too few positives in the shallow stages); the score is stage
    depth + DeepFM probability, which lies in [0, 1), so every lead of a deeper stage ranks
    above every lead of a shallower one; unknown stages (-1) rank last. Its DeepFM reads the
    stage as an input like every other row: two-stage and direct then differ only in how the
    stage is used (hard grouping vs input), not in what is visible, and within a group the
    stage is constant, so reading it cannot change the order there."""

    Options = CTROptions
    options = CTROptions()
    h_text_dim: int | None = None  # set by fit when the model reads h_text

    @classmethod
    def requires_for(cls, options: CTROptions) -> tuple[str, ...]:
        return ("tabular",) + (("categorical",) if options.model in NEEDS_SPARSE else ()) \
            + (("h_text",) if options.h_text else ()) + (("stage",) if options.stage == "group" else ())

    def inputs(self, schema: Schema) -> Inputs:
        return schema.view("h_text" if self.options.h_text else "none")

    def _inputs(self, split: Split) -> tuple[list, dict[str, np.ndarray]]:
        """The deepctr feature columns and, by the same names, this split's values."""
        s, dim = split.schema, self.section("ctr").embedding_dim
        columns: list = []
        values: dict[str, np.ndarray] = {}

        def add(column, x: np.ndarray) -> None:
            columns.append(column)
            values[column.name] = x

        codes = split.codes()
        for j, (name, size) in enumerate(s.table_categorical):
            add(dc.SparseFeat(dc.feature_name("c", j, name), size, embedding_dim=dim), codes[:, j])
        for j, name in enumerate(s.numeric):
            add(dc.DenseFeat(dc.feature_name("n", j, name), 1), split.num[:, j])
        if self.options.h_text:
            h_text = self._h_text(split)
            add(dc.DenseFeat("h_text", h_text.shape[1]), h_text)
        return columns, values

    def _h_text(self, split: Split) -> np.ndarray:
        if split.h_text is None:
            raise DataError(f"'{self.name}' needs h_text, but the {split.name} split has none attached",
                            hint="run it through the runner, which attaches h_text from the embedding cache")
        if self.h_text_dim is not None and split.h_text.shape[1] != self.h_text_dim:
            raise DataError(f"'{self.name}' was fit with h_text of dimension {self.h_text_dim}, but the {split.name} "
                            f"split carries dimension {split.h_text.shape[1]}",
                            hint="embed every split with the same provider and h_text.dim")
        return split.h_text

    def fit(self, train: Split, valid: Split) -> "DeepCTR":
        self.config = self.section("ctr")
        if self.options.h_text:
            self.h_text_dim = self._h_text(train).shape[1]
        columns, x_train = self._inputs(train)
        if self.options.model in NEEDS_SPARSE and not any(isinstance(c, dc.SparseFeat) for c in columns):
            raise DataError(f"'{self.name}' ({self.options.model}) needs at least one categorical feature; "
                            f"dataset '{train.schema.dataset}' has none")
        with torch_threads(self.config.threads):
            self.model = dc.build_model(self.options.model, columns, self.ctx.seed)
            self.log = dc.fit(self.model, x_train, train.y, (self._inputs(valid)[1], valid.y),
                              batch_size=self.config.batch_size, epochs=self.config.epochs,
                              patience=self.config.patience, progress=self.ctx.progress, desc=self.name)
        return self

    def score(self, test: Split) -> np.ndarray:
        with torch_threads(self.config.threads):
            p = dc.predict(self.model, self._inputs(test)[1])
        if self.options.stage == "group":
            return test.stage.astype(np.float64) + np.clip(p, 0.0, np.nextafter(1.0, 0.0))
        return p

    def run_info(self) -> dict[str, Any]:
        info = {"deepctr_model": self.options.model, "ctr": self.config.to_dict(), "epochs_run": self.log.epochs_run,
                "early_stopping": self.log.early_stopping}
        if self.log.best_epoch is not None:
            info |= {"best_epoch": self.log.best_epoch + 1, "valid_auc": self.log.valid_auc,
                     "valid_auc_by_epoch": self.log.valid_auc_by_epoch}
        if self.options.h_text:
            info["h_text_dim"] = self.h_text_dim
        return info

"""The CTR baselines of both papers: six deepctr-torch models, with and without ``h_text``,
and the two Funnel+CTR variants of Table 2.

One adapter class, :class:`DeepCTR`, drives every model from the store's encoded
features: each categorical becomes a ``SparseFeat`` (train vocabulary + the OOV
code 0), each numeric a ``DenseFeat``, the text embedding ``h_text`` one
``DenseFeat`` of its dimension, and (Funnel+CTR direct) the current stage one
more ``SparseFeat``. The registered variants are rows of :data:`MODELS`.

Paper settings for all: batch 256, embedding dim 8; epochs from the profile with
early stopping on validation AUC (restoring the best epoch's weights); every
other hyper-parameter is deepctr-torch's default, the same for all six.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, fields
from typing import Any, ClassVar, Iterator

import numpy as np
import torch

from baselines import deepctr_compat as dc
from benchmark.registry import Method, MethodContext, register
from feature_store.errors import DataError
from feature_store.store import Split

# (registered name, paper name, deepctr class, constructor kwargs beyond the shared ones)
MODELS: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("wdl", "Wide & Deep", "WDL", {}),
    ("deepfm", "DeepFM", "DeepFM", {}),
    ("xdeepfm", "xDeepFM", "xDeepFM", {}),
    ("dcn", "DCN", "DCN", {}),
    ("dcnm", "DCN-M", "DCNMix", {}),
    ("autoint", "AutoInt", "AutoInt", {}),
)
NEEDS_SPARSE = {"xDeepFM", "AutoInt"}  # their interaction layers read categorical embeddings only


@dataclass(frozen=True)
class CTRConfig:
    """The ``ctr:`` section of a profile."""

    epochs: int = 5
    patience: int = 2  # epochs without a better validation AUC before stopping
    batch_size: int = 256
    embedding_dim: int = 8
    threads: int = 1  # torch threads: 256-row batches gain little from more and the count changes the floats

    @classmethod
    def from_context(cls, ctx: MethodContext) -> "CTRConfig":
        return cls(**{f.name: int(ctx.get(f"ctr.{f.name}", f.default)) for f in fields(cls)})


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run with ``n`` torch threads, then restore the process setting."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class DeepCTR(Method):
    """A deepctr-torch model on the lead's table features (+ ``h_text``, + current stage)."""

    model_name: ClassVar[str]
    model_kwargs: ClassVar[dict[str, Any]] = {}
    use_h_text: ClassVar[bool] = False
    use_stage: ClassVar[bool] = False
    h_text_dim: int | None = None  # set by fit when the model reads h_text

    def _inputs(self, split: Split) -> tuple[list, dict[str, np.ndarray]]:
        """The deepctr feature columns and, by the same names, this split's values."""
        s, dim = split.schema, self.config.embedding_dim
        columns: list = []
        values: dict[str, np.ndarray] = {}

        def add(column, x: np.ndarray) -> None:
            columns.append(column)
            values[column.name] = x

        for j, name in enumerate(s.categorical):
            add(dc.SparseFeat(dc.feature_name("c", j, name), s.cardinalities[name], embedding_dim=dim),
                split.cat[:, j])
        if self.use_stage:  # depth 0.. -> code 1..; unknown (-1) -> 0
            add(dc.SparseFeat("stage", len(s.stage_order) + 1, embedding_dim=dim), split.stage + 1)
        for j, name in enumerate(s.numeric):
            add(dc.DenseFeat(dc.feature_name("n", j, name), 1), split.num[:, j])
        if self.use_h_text:
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
        self.config = CTRConfig.from_context(self.ctx)
        if self.use_h_text:
            self.h_text_dim = self._h_text(train).shape[1]
        columns, x_train = self._inputs(train)
        if self.model_name in NEEDS_SPARSE and not any(isinstance(c, dc.SparseFeat) for c in columns):
            raise DataError(f"'{self.name}' ({self.model_name}) needs at least one categorical feature; "
                            f"dataset '{train.schema.dataset}' has none")
        with torch_threads(self.config.threads):
            self.model = dc.build_model(self.model_name, columns, self.ctx.seed, **self.model_kwargs)
            self.log = dc.fit(self.model, x_train, train.y, (self._inputs(valid)[1], valid.y),
                              batch_size=self.config.batch_size, epochs=self.config.epochs,
                              patience=self.config.patience, progress=self.ctx.progress, desc=self.name)
        return self

    def score(self, test: Split) -> np.ndarray:
        with torch_threads(self.config.threads):
            return dc.predict(self.model, self._inputs(test)[1])

    def run_info(self) -> dict[str, Any]:
        info = {"deepctr_model": self.model_name, "ctr": asdict(self.config), "epochs_run": self.log.epochs_run,
                "early_stopping": self.log.early_stopping}
        if self.log.best_epoch is not None:
            info |= {"best_epoch": self.log.best_epoch + 1, "valid_auc": self.log.valid_auc,
                     "valid_auc_by_epoch": self.log.valid_auc_by_epoch}
        if self.use_h_text:
            info["h_text_dim"] = self.h_text_dim
        return info


def _variant(name: str, paper: str, model: str, kwargs: dict[str, Any], h_text: bool) -> type[DeepCTR]:
    """Create and register one Table 1 row."""
    cls_name = model + ("HText" if h_text else "")
    cls = type(cls_name, (DeepCTR,), {"model_name": model, "model_kwargs": kwargs, "use_h_text": h_text,
                                      "__module__": __name__, "__qualname__": cls_name})
    registered = f"{name}+h_text" if h_text else name
    inputs = "table features + the lead's text embedding h_text (one dense input)" if h_text else "table features"
    return register(name=registered, family="ctr", tables=("table1",), requires=("h_text",) if h_text else (),
                    description=f"{paper} (deepctr-torch {model}) on the {inputs}; early stopping on valid AUC")(cls)


for _row in MODELS:
    for _with_text in (False, True):
        _cls = _variant(*_row, h_text=_with_text)
        globals()[_cls.__name__] = _cls  # importable by name (pickling, introspection)


@register(name="funnel_ctr_direct", family="ctr", tables=("table2",), requires=("stage",),
          description="Funnel+CTR direct: DeepFM with the current funnel stage as a categorical input")
class FunnelCTRDirect(DeepCTR):
    model_name = "DeepFM"
    use_stage = True


@register(name="funnel_ctr_two_stage", family="ctr", tables=("table2",), requires=("stage",),
          description="Funnel+CTR two-stage: leads grouped by current stage (deeper first), DeepFM ranks within")
class FunnelCTRTwoStage(DeepCTR):
    """One DeepFM (without the stage) is trained on all train leads: per-stage models would see
    too few positives in the shallow stages. Score = stage depth + DeepFM probability, which
    lies in [0, 1), so every lead of a deeper stage ranks above every lead of a shallower one;
    unknown stages (-1) rank last."""

    model_name = "DeepFM"

    def score(self, test: Split) -> np.ndarray:
        p = np.clip(super().score(test), 0.0, np.nextafter(1.0, 0.0))
        return test.stage.astype(np.float64) + p

"""The one adapter between this suite and deepctr-torch 0.3.0.

Every workaround for a deepctr-torch quirk lives here, each with a one-line
comment saying why, so ``baselines.ctr`` reads like plain model code and an
upgrade of deepctr-torch means reviewing this file only. Import deepctr-torch
only through this module: its own ``__init__`` phones home.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import io
import math
import re
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from feature_store.sampling import both_classes

TESTED_VERSION = "0.3.0"
PREDICT_BATCH = 4096  # scoring needs no gradient: big batches are just faster (predict() defaults to 256)
MAX_EXACT_CODE = 2 ** 24  # float32 holds every integer below this exactly


def _import_deepctr() -> ModuleType:
    """``deepctr_torch`` with its import-time version check disabled."""
    if "deepctr_torch" in sys.modules:
        return sys.modules["deepctr_torch"]
    # deepctr_torch/__init__.py calls utils.check_version(), a thread that asks PyPI for the latest
    # version; patching after import is too late, so pre-load utils with a no-op check.
    spec = importlib.util.find_spec("deepctr_torch")
    utils_path = Path(next(iter(spec.submodule_search_locations))) / "utils.py"
    utils_spec = importlib.util.spec_from_file_location("deepctr_torch.utils", utils_path)
    utils = importlib.util.module_from_spec(utils_spec)
    utils_spec.loader.exec_module(utils)
    utils.check_version = lambda version: None
    sys.modules["deepctr_torch.utils"] = utils
    module = importlib.import_module("deepctr_torch")
    if module.__version__ != TESTED_VERSION:
        warnings.warn(f"baselines.deepctr_compat was written for deepctr-torch {TESTED_VERSION}, found "
                      f"{module.__version__}: review its workarounds", stacklevel=2)
    return module


deepctr_torch = _import_deepctr()
from deepctr_torch.callbacks import EarlyStopping  # noqa: E402  (after the patched import)
from deepctr_torch.inputs import DenseFeat, SparseFeat  # noqa: E402,F401  (re-exported for baselines.ctr)


def model_class(name: str) -> type:
    """A deepctr model class by its name in ``deepctr_torch.models`` (e.g. ``"DCNMix"``)."""
    return getattr(deepctr_torch.models, name)


def build_model(name: str, columns: list, seed: int, **kwargs: Any) -> Any:
    """A CPU model reading ``columns`` in both its linear and its deep part."""
    # BaseModel.__init__ calls torch.manual_seed(seed) with seed=1024 by default: pass the run's seed,
    # or every seed trains the same model.
    return model_class(name)(columns, columns, seed=seed, device="cpu", **kwargs)


def feature_name(prefix: str, i: int, column: str) -> str:
    """A unique deepctr feature name for the ``i``-th column of a group."""
    # embeddings live in an nn.ModuleDict keyed by feature name, and torch refuses '.' in module names.
    return f"{prefix}{i}_{re.sub(r'[^0-9A-Za-z_]', '_', column)}"


def float32_inputs(columns: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The input columns as deepctr-torch concatenates them into one float32 array.

    float32 columns and codes that float32 holds exactly by their type (int16 and narrower) are passed
    as they are (views of the split's arrays, strided or not: no copy per model); wider codes are
    converted to float32 (a copy)."""
    # fit()/predict() np.concatenate all columns: int32/int64 codes + float32 numerics give a float64
    # copy of the whole table; float32 keeps 4 bytes a cell, and codes below 2**24 stay exact.
    out = {}
    for name, a in columns.items():
        if np.can_cast(a.dtype, np.float32, "safe"):
            out[name] = a
            continue
        if np.issubdtype(a.dtype, np.integer) and a.size and int(np.abs(a).max()) >= MAX_EXACT_CODE:
            raise ValueError(f"input '{name}' has codes >= 2**24, which float32 cannot hold exactly")
        out[name] = np.asarray(a, dtype=np.float32)
    return out


class _BestOnValidAUC(EarlyStopping):
    """Early stopping on validation AUC that always ends on the best epoch's weights."""

    def __init__(self, patience: int):
        super().__init__(monitor="val_auc", mode="max", patience=patience, restore_best_weights=True)
        self.best_epoch = -1

    def on_epoch_begin(self, epoch, logs=None):
        # predict() (run for validation) calls self.eval() and fit() calls train() only once, so
        # epochs after the first would train in eval mode (dropout/batch norm silently off).
        self.model.train()

    def on_epoch_end(self, epoch, logs=None):
        before = self.best
        super().on_epoch_end(epoch, logs)
        if self.best != before:
            self.best_epoch = epoch

    def on_train_end(self, logs=None):
        # 0.3.0 restores the best weights only when patience runs out, not when the last epoch is reached.
        if self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)
        super().on_train_end(logs)


@dataclass
class FitLog:
    """What one fit did: epochs run, whether it stopped early on validation AUC, the best epoch
    (0-based), its validation AUC and every epoch's."""

    epochs_run: int
    early_stopping: bool
    best_epoch: int | None = None
    valid_auc: float | None = None
    valid_auc_by_epoch: list[float] = field(default_factory=list)


def fit(model: Any, x: dict[str, np.ndarray], y: np.ndarray, valid: tuple[dict[str, np.ndarray], np.ndarray] | None,
        *, batch_size: int, epochs: int, patience: int, progress: bool = False, desc: str = "fit") -> FitLog:
    """Train ``model`` (compiled here: Adam, BCE, AUC) with early stopping on ``valid`` when given.

    One progress bar counts training batches over all epochs (deepctr's own bar is per epoch
    and needs ``verbose=1``, which crashes: see below)."""
    if valid is not None and not both_classes(valid[1]):
        valid = None  # the per-epoch validation AUC raises on a one-class slice: train every epoch instead
    model.compile("adam", "binary_crossentropy", metrics=["auc"])
    stopper = _BestOnValidAUC(patience) if valid is not None else None
    steps = math.ceil(len(y) / batch_size) * epochs
    with tqdm(total=steps, desc=desc, unit="batch", disable=not progress, leave=False) as bar:
        # fit() exposes no per-batch hook: count optimizer steps instead.
        hook = model.optim.register_step_post_hook(lambda *_: bar.update(1))
        try:
            # fit() prints the device, "Train on N samples..." and epoch lines to stdout even with verbose=0.
            with contextlib.redirect_stdout(io.StringIO()):
                history = model.fit(
                    float32_inputs(x), np.asarray(y, dtype=np.float32), batch_size=batch_size, epochs=epochs,
                    verbose=0,  # verbose=1 computes AUC per batch and crashes on a one-class batch (a deepctr-torch 0.3.0 bug)
                    # explicit validation data: validation_split would cut by row position, not by time
                    validation_data=None if valid is None else (float32_inputs(valid[0]),
                                                                 np.asarray(valid[1], dtype=np.float32)),
                    callbacks=[stopper] if stopper else None, shuffle=True)
        finally:
            hook.remove()
    log = FitLog(epochs_run=len(history.epoch), early_stopping=stopper is not None,
                 valid_auc_by_epoch=[float(v) for v in history.history.get("val_auc", [])])
    if stopper is not None and stopper.best_epoch >= 0:
        log.best_epoch, log.valid_auc = stopper.best_epoch, float(stopper.best)
    return log


def predict(model: Any, x: dict[str, np.ndarray]) -> np.ndarray:
    """Predicted probabilities, shape (n,)."""
    # predict() returns shape (n, 1).
    return model.predict(float32_inputs(x), batch_size=PREDICT_BATCH).reshape(-1)

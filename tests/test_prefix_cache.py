"""The frozen-prefix cache (llm_ranker.prefix_cache) on a tiny 4-block backbone with LoRA in the top block:
hits across epochs and rows (counted), misses on any change of backbone, prompt budget, k or precision,
filled in batches before training and scoring (within float rounding of one prompt at a time), a killed
run resumes with what it wrote, the bound holds, and scores equal those without the cache."""

import numpy as np
import pytest
import torch
from llm_fixtures import HOT, TERMS, TRAIN_CFG, backbone_dir, make_split, one_thread, tiny_backbone  # noqa: F401

from feature_store.errors import ConfigError
from llm_ranker.model import LeadRanker
from llm_ranker.prefix_cache import FOLDER, PrefixCache, open_cache
from llm_ranker.sampler import BucketedOversampler
from llm_ranker.trainer import Trainer, predict

BLOCKS = 4
TOP1 = TRAIN_CFG.model_copy(update={"lora_layers": 1, "epochs": 2, "prefix_cache": "fp32"})
LEADS = 24
DISTINCT = 10  # the toy prompts repeat: "hot"/"cold" x calls 0..4


@pytest.fixture
def backbone(backbone_dir):
    """A fresh 4-block backbone per ranker (LoRA adapts a model in place), loaded from one build."""
    return lambda **shape: tiny_backbone(backbone_dir, [HOT.format(w=w, n=n) for w in ("hot", "cold")
                                                        for n in range(8)], layers=BLOCKS, **shape)


def toy(bb, varied=False):
    """The leads' prompts and labels: ``DISTINCT`` prompts of one length repeated, or (``varied``) ``LEADS``
    prompts of as many lengths (so a batch of them is padded)."""
    labels = np.arange(LEADS) % 2
    texts = [HOT.format(w="hot cold " * (i * 3 % 41 if varied else 0) + ("hot" if y else "cold"), n=i % 5)
             for i, y in enumerate(labels)]
    return bb.tokenizer(texts)["input_ids"], labels


def train_and_score(bb, cfg, cache_dir, build="toy", varied=False):
    """Train two epochs and score the training prompts, with the cache ``cfg`` asks for."""
    ids, labels = toy(bb, varied)
    torch.manual_seed(0)
    model = LeadRanker(bb, cfg)
    cache = open_cache(model, cfg, cache_dir, build, torch.float32)
    report = Trainer(cfg, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids, {"label": labels}, bb.pad_id,
                                                                          cache)
    return predict(model, ids, bb.pad_id, 8, torch.float32, prefixes=cache), cache, report


def files(cache_dir):
    return sorted((cache_dir / FOLDER).rglob("*.npy"))


def test_the_cache_is_hit_across_epochs_and_rows_and_scores_equal_those_without(backbone, tmp_path):
    plain, none, _ = train_and_score(backbone(), TOP1.model_copy(update={"prefix_cache": "off"}), tmp_path)
    assert none is None and files(tmp_path) == []
    cached, cache, report = train_and_score(backbone(), TOP1, tmp_path)
    # every distinct prompt computed once; every draw of two epochs and of the scoring pass read it
    assert cache.stats.misses == cache.stats.written == DISTINCT and len(files(tmp_path)) == DISTINCT
    assert cache.stats.hits == report.draws + LEADS
    for key in ("pointwise", "qa", "pooled"):  # fp32 stored: the frozen blocks' float reordering only
        np.testing.assert_allclose(cached[key], plain[key], atol=1e-5)
    row2, cache2, _ = train_and_score(backbone(), TOP1, tmp_path)  # the next row of the table: no miss at all
    assert cache2.stats.misses == 0 and cache2.stats.hits == report.draws + LEADS
    for key in ("pointwise", "qa"):
        np.testing.assert_array_equal(row2[key], cached[key])
    half, _, _ = train_and_score(backbone(), TOP1.model_copy(update={"prefix_cache": "fp16"}), tmp_path)
    for key in ("pointwise", "qa"):  # fp16 stored: within a few 1e-3 of a logit on this random backbone
        np.testing.assert_allclose(half[key], plain[key], atol=5e-3)
        assert not np.array_equal(half[key], cached[key])


def test_a_change_of_backbone_k_or_precision_misses_every_prompt(backbone, tmp_path):
    _, first, _ = train_and_score(backbone(), TOP1, tmp_path)
    changes = {"another build": dict(build="other"),
               "k = 2": dict(cfg=TOP1.model_copy(update={"lora_layers": 2})),
               "fp16": dict(cfg=TOP1.model_copy(update={"prefix_cache": "fp16"})),
               "other frozen weights": dict(perturb=True)}
    for what, change in changes.items():
        bb = backbone()
        if change.get("perturb"):  # same build name, one frozen weight moved by 1e-6
            with torch.no_grad():
                bb.model.get_decoder().layers[0].mlp.up_proj.weight[0, 0] += 1e-6
        _, cache, _ = train_and_score(bb, change.get("cfg", TOP1), tmp_path, change.get("build", "toy"))
        assert cache.stats.misses == DISTINCT, what
        assert cache.folder != first.folder, what
    # the top block's weights are not part of the key (they train): a row with other LoRA weights hits
    bb = backbone()
    with torch.no_grad():
        bb.model.get_decoder().layers[BLOCKS - 1].mlp.up_proj.weight[0, 0] += 1.0
    _, cache, _ = train_and_score(bb, TOP1, tmp_path)
    assert cache.stats.misses == 0 and cache.folder == first.folder


def test_a_shorter_prompt_budget_misses_the_prompts_it_trims(tmp_path):
    """Through the method: asllr_ce with LoRA in the top block of the 2-block tiny backbone."""
    from benchmark.registry import get

    llm = {"max_length": 256, "threads": 1, "batch_size": 8, "pos_rate": 0.3, "tiny": {"vocab": 600},
           "lora_layers": 1, "prefix_cache": "fp16", "train_max_leads": 40}
    train = make_split(40, labels=np.arange(40) % 4 == 0)
    train.texts["transcript"] = [t + f"\nCustomer: my order number is {i}." for i, t in
                                 enumerate(train.texts["transcript"])]  # 40 distinct prompts
    runs = {}
    for name, budget in (("first", 256), ("again", 256), ("shorter", 120)):
        method = get("asllr_ce").from_config({"llm": {**llm, "max_length": budget}}, cache_dir=str(tmp_path))
        method.fit(train, make_split(1))
        method.score(train)
        runs[name] = method.run_info()
    fit, scored = runs["first"]["prefix_cache_fit"], runs["first"]["prefix_cache_scored"]
    assert fit["misses"] == 40 and fit["hits"] == runs["first"]["train_draws"] and fit["store"] == "fp16"
    assert scored["misses"] == 40 and scored["hits"] == fit["hits"] + 40 and scored["size_mb"] > 0
    assert runs["again"]["prefix_cache_scored"]["misses"] == 0
    assert runs["shorter"]["dialogue_trimmed_share"] == 1.0
    assert runs["shorter"]["prefix_cache_fit"]["misses"] == 40  # trimmed: other token ids, other prompts


def test_a_killed_run_resumes_with_the_prefixes_it_wrote(backbone, tmp_path, monkeypatch):
    cfg = TOP1.model_copy(update={"score_batch_size": 4})  # filled 4, 4 and 2 prompts a batch
    compute = PrefixCache._compute
    done = []

    def killed_after_one_batch(self, ids):
        if done:
            raise KeyboardInterrupt  # the process dies here, before the second batch is written
        done.extend(ids)
        return compute(self, ids)
    monkeypatch.setattr(PrefixCache, "_compute", killed_after_one_batch)
    with pytest.raises(KeyboardInterrupt):
        train_and_score(backbone(), cfg, tmp_path)
    assert len(files(tmp_path)) == len(done) == 4  # whole files only: no temporary left behind
    monkeypatch.setattr(PrefixCache, "_compute", compute)
    resumed, cache, report = train_and_score(backbone(), cfg, tmp_path)
    assert cache.stats.misses == DISTINCT - 4 and cache.stats.hits == report.draws + LEADS
    fresh, _, _ = train_and_score(backbone(), cfg, tmp_path / "fresh")
    for key in ("pointwise", "qa"):  # killed between batches: the rerun fills the rest in the same batches
        np.testing.assert_array_equal(resumed[key], fresh[key])


def test_the_bound_evicts_other_runs_least_recently_used_first_and_is_reported(backbone, tmp_path):
    _, first, _ = train_and_score(backbone(), TOP1, tmp_path)
    size = sum(p.stat().st_size for p in files(tmp_path))
    # room for about 1.5 builds: a second build (k = 2) evicts part of the first, never its own prompts
    cfg = TOP1.model_copy(update={"lora_layers": 2, "prefix_cache_gb": 1.5 * size / 2**30})
    _, second, _ = train_and_score(backbone(), cfg, tmp_path)
    assert second.stats.written == DISTINCT and second.stats.skipped == 0 and 0 < second.stats.evicted < DISTINCT
    assert sum(p.stat().st_size for p in files(tmp_path)) <= 1.5 * size
    assert len(list(second.folder.rglob("*.npy"))) == DISTINCT  # this run's files all stay
    assert second.describe()["size_mb"] <= second.describe()["bound_mb"]
    # a bound below one build: what does not fit is computed, used, counted and not written
    tight = TOP1.model_copy(update={"lora_layers": 3, "prefix_cache_gb": 0.5 * size / 2**30})
    _, third, _ = train_and_score(backbone(), tight, tmp_path)
    assert third.stats.skipped > 0 and third.stats.written + third.stats.skipped == third.stats.misses
    assert sum(p.stat().st_size for p in files(tmp_path)) <= 0.5 * size


def test_backbones_the_cache_cannot_serve_are_refused(backbone, tmp_path):
    bb = backbone()
    bb.model.config.attention_dropout = 0.1  # the frozen blocks would drop out in training
    with pytest.raises(ConfigError, match="has dropout in its frozen blocks.*llm.prefix_cache=off"):
        train_and_score(bb, TOP1, tmp_path)
    bb = backbone()
    decoder = bb.model.get_decoder()
    whole = decoder.forward

    def not_llama_style(*args, **kwargs):  # e.g. a decoder that scales its embeddings inside its forward
        out = whole(*args, **kwargs)
        out.last_hidden_state = out.last_hidden_state * 2
        return out
    decoder.forward = not_llama_style
    with pytest.raises(ConfigError, match="does not give the same states when its forward is split"):
        train_and_score(bb, TOP1, tmp_path)


def computed_batches(monkeypatch) -> list[int]:
    """The size of every batch of prompts the cache computes from now on (1: a prompt ``get`` computed alone)."""
    sizes = []
    compute = PrefixCache._compute

    def counted(self, ids):
        sizes.append(len(ids))
        return compute(self, ids)
    monkeypatch.setattr(PrefixCache, "_compute", counted)
    return sizes


def test_fill_computes_each_missing_prompt_once_in_batches(backbone, tmp_path, monkeypatch):
    bb = backbone()
    ids, _ = toy(bb)
    cache = open_cache(LeadRanker(bb, TOP1), TOP1, tmp_path, "toy", torch.float32)
    sizes = computed_batches(monkeypatch)
    cache.get(ids[0])  # one prompt stored already
    assert cache.fill(ids, 4) == DISTINCT - 1 and sizes == [1, 4, 4, 1]  # each missing prompt once
    assert cache.stats.misses == cache.stats.written == DISTINCT == len(files(tmp_path)) and cache.stats.hits == 0
    assert cache.fill(ids, 4) == 0 and sizes == [1, 4, 4, 1] and cache.stats.misses == DISTINCT  # all stored
    for x in ids:
        cache.get(x)
    assert cache.stats.hits == LEADS and cache.stats.misses == DISTINCT
    cut = files(tmp_path)[0]  # a file cut short (a full disk, a copy killed): computed again
    cut.write_bytes(cut.read_bytes()[:-8])
    assert cache.fill(ids, 4) == 1 and cache.stats.written == DISTINCT + 1


def test_a_batch_filled_prefix_is_the_one_computed_alone_within_float_rounding(backbone, tmp_path):
    bb = backbone()
    ids, _ = toy(bb, varied=True)
    assert len({len(x) for x in ids}) == LEADS  # right-padded batches of prompts from 22 to 100 tokens
    model = LeadRanker(bb, TOP1)
    alone = open_cache(model, TOP1, tmp_path / "alone", "toy", torch.float32)
    batched = open_cache(model, TOP1, tmp_path / "batched", "toy", torch.float32)
    batched.fill(ids, 16)
    for x in ids:  # measured: at most 2.2e-8 (states up to 0.12), a few units in fp32's last place
        torch.testing.assert_close(batched.get(x), alone.get(x), rtol=0, atol=1e-6)
    assert alone.stats.misses == len(ids) and batched.stats.hits == len(ids)


def test_training_and_scoring_fill_the_cache_before_they_read_it(backbone, tmp_path, monkeypatch):
    bb = backbone()
    ids, labels = toy(bb)
    cfg = TOP1.model_copy(update={"score_batch_size": 4})
    model = LeadRanker(bb, cfg)
    cache = open_cache(model, cfg, tmp_path, "toy", torch.float32)
    sizes = computed_batches(monkeypatch)
    report = Trainer(cfg, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids, {"label": labels}, bb.pad_id,
                                                                          cache)
    # the draws' 10 distinct prompts in batches of llm.score_batch_size, then every draw read: none computed alone
    assert sizes == [4, 4, 2] and cache.stats.misses == DISTINCT and cache.stats.hits == report.draws
    test = bb.tokenizer([HOT.format(w=w, n=n) for w in ("hot", "cold") for n in range(5, 8)])["input_ids"]
    predict(model, test + ids, bb.pad_id, cfg.score_batch_size, torch.float32, prefixes=cache)
    assert sizes == [4, 4, 2, 4, 2]  # the scoring pass fills its 6 new prompts, reads the rest
    assert cache.stats.misses == DISTINCT + 6 and cache.stats.hits == report.draws + len(test) + LEADS


def test_scores_with_a_batch_filled_cache_equal_those_filled_one_prompt_at_a_time(backbone, tmp_path, monkeypatch):
    batched, cache, _ = train_and_score(backbone(), TOP1, tmp_path / "batched", varied=True)
    assert cache.stats.misses == LEADS
    monkeypatch.setattr(PrefixCache, "fill", lambda self, ids, batch_size: 0)  # get computes each prompt alone
    alone, cache, _ = train_and_score(backbone(), TOP1, tmp_path / "alone", varied=True)
    assert cache.stats.misses == LEADS
    # measured: 3e-7 on scores up to 1.0, 3e-6 on pooled states up to 2.8 (the final norm scales them up)
    for key, atol in (("pointwise", 1e-5), ("qa", 1e-5), ("pooled", 3e-5)):
        np.testing.assert_allclose(batched[key], alone[key], rtol=0, atol=atol)


def test_a_bare_off_on_the_command_line_turns_the_cache_off():
    """YAML reads `--set llm.prefix_cache=off` as false; the setting must still mean the cache is off."""
    from benchmark.profile import load_profile
    from feature_store.typed import parse
    from llm_ranker.config import LLMParams

    profile = load_profile("standard", ["llm.prefix_cache=off"])
    assert parse(LLMParams, profile.config["llm"], section="llm").prefix_cache == "off"
    with pytest.raises(ConfigError):
        load_profile("standard", ["llm.prefix_cache=on"])


def test_rows_of_a_table_share_the_frozen_readout_bit_for_bit(backbone, tmp_path):
    """The probe's frozen pass over the training prompts is computed by the first row and read by the next
    (another method: HPRO's two heads), which then trains and scores exactly as it would have alone; other
    batches or prompts are another readout, and a trained model reads none."""
    cfg = TOP1.model_copy(update={"head_input": "standardized", "probe_steps": 5})

    def row(cache_dir, heads=("pointwise",), run_cfg=cfg, n=LEADS):
        bb = backbone()
        ids, labels = toy(bb, varied=True)
        torch.manual_seed(0)
        model = LeadRanker(bb, run_cfg, head_names=heads)
        cache = open_cache(model, run_cfg, cache_dir, "toy", torch.float32)
        Trainer(run_cfg, TERMS, BucketedOversampler(8, 0.5), seed=0).fit(model, ids[:n], {"label": labels[:n]},
                                                                         bb.pad_id, cache)
        return model, cache, predict(model, ids, bb.pad_id, 8, torch.float32, prefixes=cache)

    first, cache1, _ = row(tmp_path)
    assert (cache1.stats.readout_hits, cache1.stats.readout_misses) == (0, 1)
    hpro, cache2, scores = row(tmp_path, heads=("pointwise", "pairwise"))
    assert (cache2.stats.readout_hits, cache2.stats.readout_misses) == (1, 0)
    assert torch.equal(hpro.head_center, first.head_center) and torch.equal(hpro.head_scale, first.head_scale)
    alone, _, alone_scores = row(tmp_path / "alone", heads=("pointwise", "pairwise"))  # no readout to read
    assert torch.equal(hpro.head_center, alone.head_center)
    for key in ("pointwise", "pairwise", "qa"):
        np.testing.assert_array_equal(scores[key], alone_scores[key])
    assert row(tmp_path, run_cfg=cfg.model_copy(update={"score_batch_size": 4}))[1].stats.readout_misses == 1
    assert row(tmp_path, n=LEADS - 2)[1].stats.readout_misses == 1  # other prompts
    hits = cache2.stats.readout_hits
    cache2.frozen_readout([[1, 2, 3]], 8, lambda: np.zeros((1, cache2.hidden), np.float32))  # trained: not read
    assert cache2.stats.readout_hits == hits and cache2.stats.readout_misses == 0


def test_a_parallel_row_waits_for_the_fill_and_the_readout_in_flight_then_reads_them(backbone, tmp_path):
    """Two rows of a table side by side (``--jobs 2``): while one fills (or computes the frozen readout), the
    other waits on the lock, then reads what was written instead of computing it in other batches."""
    import threading

    from feature_store.files import waiting_lock

    bb = backbone()
    ids, _ = toy(bb)
    cache = open_cache(LeadRanker(bb, TOP1), TOP1, tmp_path, "toy", torch.float32)
    readout = cache.folder / "readout" / f"{cache._readout_digest(ids, 8)}.lock"
    for lock, call in ((cache.folder / "fill.lock", lambda: cache.fill(ids, 4)),
                       (readout, lambda: cache.frozen_readout(ids, 8, lambda: np.ones((LEADS, cache.hidden),
                                                                                       np.float32)))):
        worker, before = threading.Thread(target=call), cache.stats.written
        with waiting_lock(lock):  # the other row's fill (readout) in flight
            worker.start()
            worker.join(timeout=0.5)
            assert worker.is_alive() and cache.stats.written == before  # waiting: nothing written
        worker.join(timeout=30)
        assert not worker.is_alive() and cache.stats.written > before
    assert cache.stats.written == DISTINCT + 1  # the prompts, then the readout

"""The synthetic world: determinism, positive rate, calibration and optimality of p_true."""

import hashlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from feature_store.synthetic import WORLDS, World, generate


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate("benchmark", 600, 3, tmp_path / "a", progress=False)
    generate("benchmark", 600, 3, tmp_path / "b", progress=False)
    generate("benchmark", 600, 4, tmp_path / "c", progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b")
    assert _digest(tmp_path / "a") != _digest(tmp_path / "c")


@pytest.fixture(scope="module", params=sorted(WORLDS))
def big_draw(request):
    """200k leads drawn without rendering transcripts (fast), with the latent intent."""
    world = World.build(request.param, seed=11)
    draws = [world.draw(11, c, 50_000) for c in range(4)]
    cat = lambda key: np.concatenate([getattr(d, key) for d in draws])  # noqa: E731
    z = np.concatenate([d.obs["z"] for d in draws])
    return request.param, cat("y"), cat("p_true"), z


def test_positive_rate_hits_target(big_draw):
    world, y, p, _ = big_draw
    target = WORLDS[world].target_rate
    sd = np.sqrt(target * (1 - target) / len(y))
    assert abs(y.mean() - target) < 4 * sd + 0.0005  # sampling noise + pilot calibration error


def test_p_true_is_calibrated(big_draw):
    _, y, p, _ = big_draw
    bins = np.quantile(p, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 9)
    for b in range(10):
        m = idx == b
        expected, observed = p[m].mean(), y[m].mean()
        sd = np.sqrt(np.sum(p[m] * (1 - p[m]))) / m.sum()
        assert abs(observed - expected) < 4.5 * sd, (b, observed, expected)


def test_p_true_cannot_be_beaten_even_with_the_latent_intent(big_draw):
    _, y, p, z = big_draw
    half = len(y) // 2
    x = np.column_stack([np.log(p / (1 - p)), z])
    model = LogisticRegression().fit(x[:half], y[:half])
    auc_model = roc_auc_score(y[half:], model.decision_function(x[half:]))
    auc_true = roc_auc_score(y[half:], p[half:])
    # Bootstrap-scale noise of an AUC difference on ~1.4k positives is ~0.005.
    assert auc_model <= auc_true + 0.005
    assert roc_auc_score(y, z) < roc_auc_score(y, p)


def test_text_carries_signal_that_the_table_does_not(tmp_path):
    import pandas as pd

    generate("benchmark", 3000, 0, tmp_path, progress=False)
    df = pd.read_parquet(tmp_path / "leads-00000.parquet")
    has_deposit = df.transcript.str.contains("deposit")
    assert has_deposit.any() and (df.calls_so_far[has_deposit] > 0).all()
    assert (df.transcript[df.calls_so_far == 0] == "").all()
    long = df.transcript.str.split().str.len()
    assert long.max() > 1500 and long[df.calls_so_far > 0].min() < 60

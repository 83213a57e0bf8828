import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    """One folder of tiny generated worlds shared by the whole session (generated on first use)."""
    return tmp_path_factory.mktemp("worlds")


@pytest.fixture(scope="session")
def tiny_splits(data_dir):
    """Splits of a tiny table-2 world (3,000 leads) through the same path a run takes."""
    from benchmark.contract import contract_profile, tiny_entry
    from benchmark.runner import load_splits

    return load_splits(tiny_entry("table2"), contract_profile(data_dir))


def pytest_configure(config):
    """Load every method and embedding provider through the entry points, as a run does."""
    from benchmark import registry

    registry.load_all()

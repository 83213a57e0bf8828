"""Imports follow the data: feature_store -> leadrank_api -> (baselines | llm_ranker) -> benchmark.

Read from the source with ``ast`` (every import, function-local ones included), so a
back-edge fails here even when it is hidden inside a function."""

import ast
from pathlib import Path


ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("feature_store", "leadrank_api", "baselines", "llm_ranker", "benchmark")
# package -> the project packages it may import (besides itself)
ALLOWED = {
    "feature_store": set(),
    "leadrank_api": {"feature_store"},
    "baselines": {"feature_store", "leadrank_api"},
    "llm_ranker": {"feature_store", "leadrank_api"},
    "benchmark": {"feature_store", "leadrank_api", "baselines", "llm_ranker"},
}
# inside feature_store: a module may import only modules before it in the data path
FEATURE_STORE_ORDER = ("errors", "typed", "files", "spec", "encoders", "ingest", "sampling", "validate", "schema",
                       "evaluation", "split", "store", "adapters", "synthetic", "embeddings", "text_encoders")


def imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out += [f"{node.module}.{a.name}" for a in node.names]
    return out


def violations(root: Path) -> list[str]:
    """Every import against the layering under ``root``: package back-edges, feature_store modules
    importing later ones, and private names (``_x``) imported from another module."""
    bad = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")) if (root / package).is_dir() else []:
            here = str(path.relative_to(root))
            for name in imports(path):
                parts = name.split(".")
                if parts[0] in PACKAGES and parts[0] != package and parts[0] not in ALLOWED[package]:
                    bad.append(f"{here} imports {name} (layer {package} -> {parts[0]})")
                if parts[0] in PACKAGES and any(p.startswith("_") and not p.startswith("__") for p in parts[1:]):
                    bad.append(f"{here} imports the private name {name}")
                if package == parts[0] == "feature_store" and len(parts) > 1 and path.stem in FEATURE_STORE_ORDER \
                        and parts[1] in FEATURE_STORE_ORDER \
                        and FEATURE_STORE_ORDER.index(parts[1]) >= FEATURE_STORE_ORDER.index(path.stem):
                    bad.append(f"{here} imports {name} (against the feature store's data path)")
    return sorted(set(bad))


def test_the_project_follows_the_layering():
    assert violations(ROOT) == []


OLD_BACK_EDGES = {  # what the layout had before the layering (one line each)
    "baselines/ctr.py": "from benchmark.registry import Method, register\n",
    "llm_ranker/h_text.py": "from benchmark.registry import MethodContext\n",
    "feature_store/embeddings.py": "def get_provider():\n    import llm_ranker\n",
    "feature_store/validate.py": "def check():\n    from feature_store.store import Dataset\n",
    "feature_store/ingest.py": "from feature_store.store import file_digest\n",
    "benchmark/contract.py": "def fit():\n    from benchmark.runner import _prepare\n",
}


def test_every_old_back_edge_would_fail(tmp_path):
    for rel, src in OLD_BACK_EDGES.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(src)
    found = violations(tmp_path)
    assert {line.split(" ")[0] for line in found} == set(OLD_BACK_EDGES), found

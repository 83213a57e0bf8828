"""The README's headline tables: cut from the rendered table files, so no number in them is typed by hand.

The block between the README's markers holds, for each committed profile in ``SOURCES``, the grid of
Table 1 and Table 2 exactly as ``benchmark.tables`` renders it into ``<results>/table*.md``; footnotes,
plots and p-values stay in those files, which the block links. ``leadrank tables`` and ``leadrank run``
rewrite the block whenever they write one of those folders' tables, and ``leadrank tables --check``
fails while it differs. Comparing the block with the table files is comparing it with the runs: the
same ``--check`` (and tests/test_committed_results.py) compares the table files with a fresh render of
``runs/``, so a changed digit fails one check or the other.
"""

from __future__ import annotations

import re
from pathlib import Path

from feature_store.errors import ConfigError
from feature_store.files import atomic_write_text

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- headline-tables:start -->", "<!-- headline-tables:end -->"
# results folder (relative to the README) -> the profile it holds, named above each of its tables
SOURCES = {
    "results/standard": "standard profile (SmolLM2-135M backbone)",
    "results": "quick profile (tiny random-init backbone: a pipeline check, not a ranker)",
}
TABLES = ("table1", "table2")


def sections(markdown: str) -> list[tuple[str, str]]:
    """(title, grid) of each dataset section of a rendered table file: the ``## `` heading and the
    Markdown table under it, without the plots line and the footnotes."""
    out = []
    for part in re.split(r"(?m)^## ", markdown)[1:]:
        title, _, body = part.partition("\n")
        grid = [line for line in body.strip().split("\n\n", 1)[0].splitlines() if line.startswith("|")]
        out.append((title.strip(), "\n".join(grid)))
    return out


def block(root: Path = ROOT) -> str:
    """The headline block for the table files under ``root``, in ``SOURCES`` order."""
    parts = []
    for folder, caption in SOURCES.items():
        for table in TABLES:
            for title, grid in sections((root / folder / f"{table}.md").read_text()):
                parts.append(f"**{title}**, {caption} · [footnotes, plots, p-values]({folder}/{table}.md)\n\n{grid}")
    return "\n\n".join(parts)


def replaced(text: str, new_block: str, name: str = "README.md") -> str:
    """``text`` with everything between the markers replaced by ``new_block``."""
    if START not in text or END not in text:
        raise ConfigError(f"no markers {START} ... {END}", file=name,
                          hint="put them where the headline tables belong")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{new_block}\n{END}{tail}"


def feeds(results: Path, root: Path) -> bool:
    """Whether the README under ``root`` shows tables of the results folder ``results``."""
    return Path(results).resolve() in {(root / folder).resolve() for folder in SOURCES}


def sync(results: Path, check: bool = False, readme: Path | None = None) -> list[Path]:
    """After ``results``' tables were written (or checked): the README if its block is out of date,
    rewritten unless ``check``; nothing when the README does not show that folder (a user's own
    ``--out``, an installed package without the repository's README)."""
    readme = readme or README
    if not readme.is_file() or not feeds(results, readme.parent):
        return []
    text = readme.read_text()
    new = replaced(text, block(readme.parent), readme.name)
    if new == text:
        return []
    if not check:
        atomic_write_text(readme, new)
    return [readme]

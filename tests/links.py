"""Relative links of a Markdown page, for the tests that check they resolve (tables, README, docs/)."""

import re
from pathlib import Path

LINK = re.compile(r"\]\(([^)#\s]+)[^)]*\)")  # [text](target) and ![alt](target); the #anchor is not checked


def broken_links(page: Path) -> list[str]:
    """Each relative link target of ``page`` that names no file or folder beside it."""
    targets = LINK.findall(page.read_text())
    return [t for t in targets if not t.startswith(("http://", "https://", "mailto:")) and not (page.parent / t).exists()]

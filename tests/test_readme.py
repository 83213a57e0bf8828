"""README.md stays short, its headline tables are the committed results, and every page it leads to exists."""

import re
from pathlib import Path

import pytest

from benchmark import cli, curves, headline, tables
from crm_export import write_export
from feature_store.spec import load_spec
from feature_store.validate import check
from links import broken_links

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def test_the_readme_is_at_most_250_lines():
    assert len(README.read_text().splitlines()) <= 250


def test_the_headline_block_is_what_the_committed_table_files_give():
    """The table files themselves are compared with a fresh render of the runs by
    tests/test_committed_results.py, so together a README number that differs from results/ fails."""
    assert headline.sync(ROOT / "results", check=True) == [], "run: .venv/bin/leadrank tables"


@pytest.fixture
def readme_copy(tmp_path):
    """A copy of the README beside the committed results, with one digit of its first headline figure changed."""
    (tmp_path / "results").symlink_to(ROOT / "results")
    text = README.read_text()
    figure = re.compile(r"\d\.\d{4}").search(text, text.index(headline.START))
    i = figure.end() - 1
    copy = tmp_path / "README.md"
    copy.write_text(text[:i] + str((int(text[i]) + 1) % 10) + text[i + 1:])
    return copy


def test_a_changed_digit_fails_the_check_and_a_rewrite_restores_it(readme_copy):
    results = readme_copy.parent / "results"
    stale = readme_copy.read_text()
    assert stale != README.read_text()
    assert headline.sync(results, check=True, readme=readme_copy) == [readme_copy]
    assert readme_copy.read_text() == stale  # a check writes nothing
    assert headline.sync(results / "standard", readme=readme_copy) == [readme_copy]  # either source rewrites it
    assert readme_copy.read_text() == README.read_text()


def test_leadrank_tables_check_names_a_stale_readme(readme_copy, monkeypatch, capsys):
    # only the README is stale here; the table files' own check is tests/test_committed_results.py
    monkeypatch.setattr(tables, "check_tables", lambda out: [])
    monkeypatch.setattr(curves, "check_curves", lambda folder: [])
    monkeypatch.setattr(headline, "README", readme_copy)
    assert cli.main(["tables", "--check", "--results", str(readme_copy.parent / "results")]) == 1
    assert f"{readme_copy}" in capsys.readouterr().err


def test_a_results_folder_the_readme_does_not_show_leaves_it_alone(tmp_path):
    (tmp_path / "README.md").write_text("no markers\n")
    assert headline.sync(tmp_path / "my-crm", readme=tmp_path / "README.md") == []


def test_a_readme_without_markers_is_one_line_error(tmp_path):
    (tmp_path / "results").symlink_to(ROOT / "results")
    (tmp_path / "README.md").write_text("no markers\n")
    with pytest.raises(headline.ConfigError, match="no markers"):
        headline.sync(tmp_path / "results", readme=tmp_path / "README.md")


def test_the_readme_spec_validates_a_crm_export(tmp_path):
    """The spec a new user copies first reads the test suite's CRM export with no warning and no error."""
    text = re.search(r"<!-- minimal-spec -->\s*```yaml\n(.*?)```", README.read_text(), re.S).group(1)
    path = write_export(tmp_path)
    path.write_text(text)
    report = check(load_spec(path))
    assert report.errors == [] and report.warnings == [], report.summary()


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_every_docs_page_is_linked_from_the_readme():
    linked = {(ROOT / t).resolve() for t in re.findall(r"\]\((docs/[^)#]+)", README.read_text())}
    assert {p.resolve() for p in PAGES[1:]} <= linked

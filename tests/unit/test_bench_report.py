"""The benchmark's README update: a run of one section (`--only real --update-readme`) replaces
that section's tables and nothing else; a README without its markers is left as it was."""

from __future__ import annotations

from pathlib import Path

from benchmarks import report

README = """intro, naming `<!-- bench:real:start -->` in prose
<!-- bench:start -->
old run line
<!-- bench:main:start -->
old main
<!-- bench:main:end -->
<!-- bench:real:start -->
old real
<!-- bench:real:end -->
<!-- bench:end -->
after
"""
RUN_OF_REAL = """new run line

<!-- bench:real:start -->
new run line

new real
<!-- bench:real:end -->
"""


def test_one_section_replaces_only_its_part(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert report.update_readme(RUN_OF_REAL, readme, sections=["real"]) == []
    assert readme.read_text() == README.replace("old real", "new run line\n\nnew real")


def test_a_full_run_replaces_the_whole_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README)
    assert report.update_readme(RUN_OF_REAL, readme) == []
    text = readme.read_text()
    assert text.startswith(README.partition("\n")[0] + "\n<!-- bench:start -->\nnew run line\n")
    assert "old" not in text
    assert text.endswith("<!-- bench:real:end -->\n<!-- bench:end -->\nafter\n")


def test_missing_markers_change_nothing(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(README.replace("<!-- bench:real:start -->\n", ""))
    before = readme.read_text()
    missing = report.update_readme(RUN_OF_REAL, readme, sections=["main", "real"])
    assert missing == ["<!-- bench:main:start -->", "<!-- bench:real:start -->"]
    assert readme.read_text() == before

"""What counts as a change: plans, patterns and the filter."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from reloader.watching import ChangeFilter, Pattern, Sources, WatchPlan
from reloader.watching.plan import split_glob
from reloader.watching.sources import failure_files, project_directories


@pytest.mark.parametrize(
    ("glob", "expected"),
    [
        ("**/*", Pattern(Path("/p"), "*", recursive=True)),
        ("**/*.mo", Pattern(Path("/p"), "*.mo", recursive=True)),
        ("config/*.toml", Pattern(Path("/p/config"), "*.toml")),
        ("templates/**/*.html", Pattern(Path("/p/templates"), "*.html", recursive=True)),
        ("*.py", Pattern(Path("/p"), "*.py")),
        ("src/**", Pattern(Path("/p/src"), "**", recursive=True)),
        ("config/*/x.toml", Pattern(Path("/p/config"), "*/x.toml", recursive=True)),
        ("a/**/b/*.py", Pattern(Path("/p/a"), "**/b/*.py", recursive=True)),
        ("settings.toml", Pattern(Path("/p"), "settings.toml")),
    ],
)
def test_split_glob(glob: str, expected: Pattern) -> None:
    assert split_glob(Path("/p"), glob) == expected


@pytest.mark.parametrize(
    ("glob", "path", "matches"),
    [
        ("src/**", "src/app/deep/views.py", True),
        ("src/**", "src/top.py", True),
        ("src/**", "other/top.py", False),
        ("config/*/x.toml", "config/dev/x.toml", True),
        ("config/*/x.toml", "config/x.toml", False),
        ("config/*/x.toml", "config/dev/deeper/x.toml", False),
        ("config/*/x.toml", "config/dev/y.toml", False),
        ("a/**/b/*.py", "a/b/m.py", True),
        ("a/**/b/*.py", "a/1/2/b/m.py", True),
        ("a/**/b/*.py", "a/1/2/c/m.py", False),
        ("c?nf/*.toml", "conf/db.toml", True),
    ],
)
def test_globs_match_part_by_part(glob: str, path: str, matches: bool) -> None:
    assert split_glob(Path("/p"), glob).matches(Path("/p") / path) is matches


def test_a_wildcard_directory_watches_only_the_levels_it_needs(tmp_path: Path) -> None:
    for sub in ("config/dev/deeper", "config/prod"):
        (tmp_path / sub).mkdir(parents=True)
    shallow = set(split_glob(tmp_path, "config/*/x.toml").directories())
    assert shallow == {tmp_path / "config", tmp_path / "config/dev", tmp_path / "config/prod"}
    deep = set(split_glob(tmp_path, "config/**").directories())
    assert tmp_path / "config/dev/deeper" in deep


def test_plan_matches_exact_files_and_patterns() -> None:
    plan = WatchPlan(
        frozenset({Path("/p/app/views.py")}),
        frozenset({Pattern(Path("/p/t"), "*.html", recursive=True)}),
    )
    assert plan.matches(Path("/p/app/views.py"))
    assert plan.matches(Path("/p/t/pages/deep/x.html"))
    assert not plan.matches(Path("/p/app/models.py"))
    assert not plan.matches(Path("/p/t/x.txt"))


@pytest.mark.parametrize(
    "name",
    [
        "app/__pycache__/views.cpython-311.pyc",
        "app/views.pyc",
        "app/.views.py.swp",
        "app/views.py~",
        "app/.#views.py",
        "app/#views.py#",
        "app/4913",
        "app/debug.log",
        ".git/index",
    ],
)
def test_filter_drops_compiled_files_editor_leftovers_and_logs(tmp_path: Path, name: str) -> None:
    assert not ChangeFilter(cwd=tmp_path)(tmp_path / name)


def test_filter_keeps_sources_and_applies_user_globs(tmp_path: Path) -> None:
    accept = ChangeFilter(["media/*", "*.generated.py"], cwd=tmp_path)
    assert accept(tmp_path / "app/views.py")
    assert not accept(tmp_path / "media/upload.py")
    assert not accept(tmp_path / "app/schema.generated.py")


def test_sources_cover_imported_modules_extras_and_project_python_files(tmp_path: Path) -> None:
    (tmp_path / "config").mkdir()
    sources = Sources([".env", "config/*.toml", "conf*/*/x.toml", "src/**"], cwd=tmp_path)
    plan = sources.plan()
    assert plan.matches(tmp_path / "config" / "dev" / "x.toml")
    assert plan.matches(tmp_path / "src" / "app" / "models.py")
    assert Path(__file__).absolute() in plan.files  # this test module is imported
    assert tmp_path / ".env" in plan.files
    assert plan.matches(tmp_path / "config" / "db.toml")
    # A new module beside one of ours counts; beside the standard library it does not.
    assert plan.matches(Path(__file__).parent / "brand_new_module.py")
    assert not plan.matches(Path(sys.modules["json"].__file__).parent / "brand_new_module.py")


def test_failure_files_include_syntax_error_file_and_traceback(tmp_path: Path) -> None:
    broken = tmp_path / "broken_mod.py"
    broken.write_text("x = (\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import broken_mod  # noqa: F401
    except SyntaxError as exc:
        files = failure_files(exc)
    finally:
        sys.path.remove(str(tmp_path))
    assert broken in files
    assert Path(__file__).absolute() in files


@pytest.mark.parametrize("keep_going", [True, False])
def test_a_watcher_that_must_keep_going_survives_an_unexpected_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keep_going: bool
) -> None:
    """The warm supervisor does nothing but watch: an exception out of its callback (or its
    plan) must not leave the server deaf. It watches again, and a save made meanwhile is
    still seen. A serving process's watcher just ends (its worker serves on)."""
    import threading
    import time

    import reloader.watcher
    from reloader.watcher import Watcher

    monkeypatch.setattr(reloader.watcher, "RETRY_SECONDS", 0.2)
    source = tmp_path / "views.py"
    source.write_text("A = 1\n")
    calls: list[set[Path]] = []
    called = threading.Event()

    def on_changes(paths: set[Path]) -> bool:
        calls.append(paths)
        called.set()
        if len(calls) == 1:
            raise RuntimeError("unexpected")
        return False

    watcher = Watcher(
        Sources([str(source)], cwd=tmp_path), ChangeFilter((), tmp_path), False, on_changes,
        keep_going=keep_going,
    )  # fmt: skip
    watcher.start()
    try:
        # Without keep_going, no second call ever comes: a few saves are enough to tell.
        deadline = time.monotonic() + (20 if keep_going else 3)
        count = 1
        while len(calls) < 2 and time.monotonic() < deadline:
            source.write_text(f"A = {count + 1}\n")
            count += 1
            called.wait(timeout=0.5)
            called.clear()
        assert len(calls) >= 1, "the first save was never seen"
        assert (len(calls) >= 2) == keep_going
        assert all(source in paths for paths in calls)
    finally:
        watcher.stop()


def test_project_directories_leave_out_the_standard_library_and_packages(tmp_path: Path) -> None:
    import django

    stdlib = Path(sys.modules["json"].__file__ or "")
    package = Path(django.__file__ or "")
    views, models = tmp_path / "app" / "views.py", tmp_path / "app" / "models.py"
    settings = tmp_path / "mysite" / "settings.py"
    # As each worker reports them: strings, the same file in every report.
    files = [str(p) for p in (stdlib, package, views, models, settings)] * 2
    assert project_directories(files) == {tmp_path / "app", tmp_path / "mysite"}
    assert project_directories([views, stdlib]) == {tmp_path / "app"}

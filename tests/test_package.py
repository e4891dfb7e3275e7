"""The distribution people install: built from a copy of the sources, installed into a fresh
virtualenv without Django or gunicorn, where `import reloader` and the command still work.

About 30 s: a build (setuptools fetched into an isolated environment) and a venv with
watchfiles from pip's cache.
"""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DIST = "wsgi-reloader"
# Not part of a build: the work tree's tools, caches and everything only a clone runs.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".nox", "*_cache", "__pycache__", "build", "dist", "*.egg-info",
    "tests", "benchmarks", "deploy_examples",
)  # fmt: skip


def _run(argv: list[str | Path], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in argv], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """sdist and wheel, the wheel built from the sdist as `python -m build` does, from a copy
    so that the build leaves nothing (build/, *.egg-info) in the checkout."""
    root = tmp_path_factory.mktemp("package")
    shutil.copytree(REPO, root / "src", ignore=NOT_SOURCES)
    built = _run([sys.executable, "-m", "build", "--outdir", root / "dist", root / "src"])
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    return root / "dist"


def _one(directory: Path, pattern: str) -> Path:
    (found,) = directory.glob(pattern)
    return found


def test_wheel_has_the_package_its_licence_and_complete_metadata(dist: Path) -> None:
    with zipfile.ZipFile(_one(dist, "*.whl")) as wheel:
        names = wheel.namelist()
        info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
        metadata = email.parser.Parser().parsestr(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert {"reloader/__init__.py", "reloader/__main__.py", "reloader/py.typed"} <= set(names)
    assert f"{info}/licenses/LICENSE" in names
    assert {n.split("/")[0] for n in names} == {"reloader", info}, "only the package"
    assert metadata["Name"] == DIST
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Requires-Python"] == ">=3.10"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert "pip install" in (metadata.get_payload() or ""), "README as the long description"
    required = [r for r in metadata.get_all("Requires-Dist") or [] if "extra ==" not in r]
    assert [r.split(">")[0] for r in required] == ["watchfiles"], required
    classifiers = set(metadata.get_all("Classifier") or [])
    for classifier in ("Framework :: Django :: 4.2", "Framework :: Django :: 6.1",
                       "Programming Language :: Python :: 3.10",
                       "Programming Language :: Python :: 3.13"):  # fmt: skip
        assert classifier in classifiers
    assert "wsgi-reloader = reloader.cli:main" in entry_points


def test_sdist_has_the_documents_and_no_half_test_suite(dist: Path) -> None:
    with tarfile.open(_one(dist, "*.tar.gz")) as sdist:
        names = {n.split("/", 1)[1] for n in sdist.getnames() if "/" in n}
    assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"} <= names
    assert not any(n.startswith("tests/") for n in names), sorted(names)


def test_pypi_renders_the_description(dist: Path) -> None:
    """`twine check --strict`: the README, as the long description, renders on PyPI."""
    checked = _run([sys.executable, "-m", "twine", "check", "--strict", *sorted(dist.iterdir())])
    assert checked.returncode == 0, checked.stdout[-3000:] + checked.stderr[-3000:]


def test_installed_wheel_imports_and_runs_without_django_or_gunicorn(
    dist: Path, tmp_path: Path
) -> None:
    venv = tmp_path / "venv"
    assert _run([sys.executable, "-m", "venv", venv]).returncode == 0
    python = venv / "bin" / "python"
    # watchfiles (the one dependency) comes from pip's cache or the index.
    installed = _run([python, "-m", "pip", "install", "-q", _one(dist, "*.whl")])
    assert installed.returncode == 0, installed.stderr[-3000:]

    code = (
        "import sys, reloader; print(reloader.__version__, "
        "sorted({m.split('.')[0] for m in sys.modules} & {'django', 'gunicorn'}))"
    )
    imported = _run([python, "-c", code])
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.split() == ["0.1.0", "[]"]
    helped = _run([python, "-m", "reloader", "--help"])
    assert helped.returncode == 0 and "usage: python -m reloader" in helped.stdout
    version = _run([venv / "bin" / DIST, "--version"])
    assert version.stdout.strip() == "reloader 0.1.0", version.stderr

    project = tmp_path / "project"
    project.mkdir()
    (project / "manage.py").write_text(
        "import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', 'mysite.settings')\n"
    )
    served = _run([python, "-m", "reloader"], cwd=project)
    assert served.returncode == 1
    assert "gunicorn is not installed" in served.stderr
    assert f"pip install '{DIST}[gunicorn]'" in served.stderr

"""The Django projects the servers run: a copy of the demo, optionally with generated modules
or with files of its own (the variant whose `ready()` imports the views).

Every tool serves the same copy, so they read the same files; the copy lives in a temp dir
that Apache's unprivileged user can read. "Large" projects add a generated package of many
small modules, installed into site-packages like a third-party package and imported when the
WSGI app is, so every watcher has to cover them. (The real project, a Wagtail site, is made by
`wagtail_site.py`.)
"""

from __future__ import annotations

import compileall
import hashlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "deploy_examples" / "demo"
GENERATED = "benchgen"
INSTALLED: list[Path] = []
"""Generated packages put into site-packages by this run; `remove_installed()` takes them out."""
_VERSION_LINE = re.compile(r"^VERSION\s*=.*$", re.MULTILINE)


@dataclass(frozen=True)
class Target:
    """A module the benchmark saves new VERSIONs into, and the page that answers with it."""

    file: str  # relative to the project root
    url: str


# A view module, imported on a worker's first request; and the models module, which Django
# imports at setup (and the warm mode's arbiter will hold), so its edit reloads more.
EDIT_VIEW = Target("pages/version.py", "/version/")
EDIT_MODELS = Target("pages/models.py", "/models-version/")


@dataclass(frozen=True)
class Project:
    name: str
    root: Path
    app: str  # "module:attribute" of the plain (unwrapped) WSGI app
    settings: str  # DJANGO_SETTINGS_MODULE, pointing WSGI_APPLICATION at `app`
    generated_modules: int
    modules_loaded: int  # modules with a file in sys.modules once the app and views are imported
    view: Target = EDIT_VIEW  # the page every session waits for, idles and loads on
    edits: Mapping[str, Target] = field(default_factory=dict)
    """Kind of edit -> target, for the real-project section."""


# The demo whose `PagesConfig.ready()` imports a signals module that imports the views (a
# receiver that uses them): a common habit, which makes every view module part of
# Django's setup, so in warm mode of what the arbiter holds.
READY_FILES = {
    "pages/apps.py": """\
from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "pages"

    def ready(self) -> None:
        from . import signals  # noqa: F401  (connects the receivers)
""",
    "pages/signals.py": """\
from django.db.models.signals import post_save
from django.dispatch import receiver

from . import views
from .models import Note


@receiver(post_save, sender=Note)
def note_saved(sender, instance, **kwargs):
    print(f"note {instance.pk} saved; pages: {', '.join(views.PAGES)}")
""",
}
READY_EDITS = {"view": EDIT_VIEW}


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _generate(package: Path, modules: int, per_dir: int) -> None:
    """`modules` modules in sub-packages of `per_dir`, all imported by the top package."""
    dirs = (modules + per_dir - 1) // per_dir
    top = []
    for d in range(dirs):
        names = [f"m{i:03d}" for i in range(per_dir) if d * per_dir + i < modules]
        sub = f"p{d:04d}"
        top.append(f"from . import {sub}")
        _write(package / sub / "__init__.py", "".join(f"from . import {n}\n" for n in names))
        for name in names:
            # A class, a function and a constant: a little bytecode, like a real small module.
            _write(
                package / sub / f"{name}.py",
                f'"""Generated module {sub}.{name}."""\n\n'
                f"LIMIT = {d * per_dir}\n\n\n"
                f"class Item:\n    def __init__(self, value: int) -> None:\n"
                f"        self.value = value\n\n    def double(self) -> int:\n"
                f"        return self.value * 2\n\n\n"
                f"def compute(x: int) -> int:\n    return Item(x).double() + LIMIT\n",
            )
    _write(package / "__init__.py", "\n".join(top) + "\n")


def count_modules(root: Path, app: str, settings: str) -> int:
    """How many module files a worker holds after loading the app and the demo's views."""
    module, attr = app.split(":")
    code = (
        "import sys, importlib\n"
        f"getattr(importlib.import_module({module!r}), {attr!r})\n"
        "import django.urls\n"
        "django.urls.get_resolver().url_patterns  # the URLconf is otherwise imported lazily\n"
        "print(sum(1 for m in list(sys.modules.values()) if getattr(m, '__file__', None)))\n"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings, "PYTHONPATH": str(root)}
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return int(out.stdout.split()[-1])


def make_project(
    workdir: Path,
    name: str,
    modules: int,
    per_dir: int,
    files: Mapping[str, str] | None = None,
) -> Project:
    """Copy the demo to workdir/name and add `modules` generated modules (0: the plain demo)
    and `files` (path relative to the project -> text)."""
    if not all((DEMO / t.file).is_file() for t in (EDIT_VIEW, EDIT_MODELS)):
        raise FileNotFoundError(f"the demo project is missing: {DEMO}")
    root = workdir / name
    shutil.copytree(DEMO, root, ignore=shutil.ignore_patterns("__pycache__", "db.sqlite3"))
    for relative, text in (files or {}).items():
        _write(root / relative, text)
    app, settings = "demo.wsgi:application", "demo.settings"
    if modules:
        # Installed like a third-party package (a real project's thousands of modules are
        # mostly Django, DRF, Wagtail...), so reloaders treat them as such.
        package = f"{GENERATED}_{hashlib.sha256(str(root).encode()).hexdigest()[:8]}"
        location = Path(sysconfig.get_paths()["purelib"]) / package
        INSTALLED.append(location)
        _generate(location, modules, per_dir)
        compileall.compile_dir(location, quiet=1, workers=2)
        _write(
            root / "bench_app.py",
            f"import {package}  # noqa: F401\nfrom demo.wsgi import application  # noqa: F401\n",
        )
        # runserver loads WSGI_APPLICATION at startup: point it at the app with the modules.
        _write(
            root / "bench_settings.py",
            "from demo.settings import *  # noqa: F403\n"
            "WSGI_APPLICATION = 'bench_app.application'\n",
        )
        app, settings = "bench_app:application", "bench_settings"
    _write(root / "bench_bare.wsgi", _wsgi_script(app, settings, wrapped=None))
    _write(root / "bench_reloader.wsgi", _wsgi_script(app, settings, wrapped=True))
    _write(root / "bench_reloader_off.wsgi", _wsgi_script(app, settings, wrapped=False))
    seal(root)
    return Project(
        name=name,
        root=root,
        app=app,
        settings=settings,
        generated_modules=modules,
        modules_loaded=count_modules(root, app, settings),
    )


def seal(root: Path) -> None:
    """Byte-compile once, so no tool pays for compiling (Apache's user could not write the
    files), and make everything readable by Apache's user whatever our umask is."""
    compileall.compile_dir(root, quiet=1, workers=2)
    for path in [root, *root.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def remove_installed() -> None:
    while INSTALLED:
        shutil.rmtree(INSTALLED.pop(), ignore_errors=True)


def _wsgi_script(app: str, settings: str, wrapped: bool | None) -> str:
    """A mod_wsgi script: the bare app, or the app wrapped by reloader (on or off)."""
    module, attr = app.split(":")
    head = f"import os\nos.environ.setdefault('DJANGO_SETTINGS_MODULE', {settings!r})\n"
    if wrapped is None:
        return head + f"from {module} import {attr} as application  # noqa: F401\n"
    return head + f"from reloader import wrap\napplication = wrap({app!r}, enabled={wrapped})\n"


class Editor:
    """Writes new VERSION tokens into the target's module the way editors save: atomically."""

    def __init__(self, project: Project, prefix: str, target: Target = EDIT_VIEW) -> None:
        self.target = target
        self.path = project.root / target.file
        self.prefix = prefix
        self.count = 0
        self.original = self.path.read_text(encoding="utf-8")
        self.token = ""
        self.write()

    def write(self) -> float:
        """Write the next token; return the monotonic time right after the rename."""
        self.count += 1
        self.token = f"{self.prefix}e{self.count}"
        body = _VERSION_LINE.sub(f"VERSION = {self.token!r}", self.original)
        # A comment whose length changes every time: the .pyc check compares the source's
        # size and whole-second mtime, so two saves in the same second must differ in size.
        body += f"# edit {self.count} {'.' * (self.count % 97)}\n"
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(body, encoding="utf-8")
        tmp.chmod(0o644)
        os.replace(tmp, self.path)
        return time.monotonic()

    def restore(self) -> None:
        self.path.write_text(self.original, encoding="utf-8")


def snapshot_reloader(workdir: Path) -> tuple[Path | None, str | None]:
    """Copy the reloader package under test to workdir/site; return (site, digest of sources).

    Servers get `site` first on sys.path: editing the checkout during a run (reloader watches
    its own files too) then neither restarts the servers nor mixes two versions in one run.
    """
    spec = importlib.util.find_spec("reloader")
    if spec is None or spec.origin is None:
        return None, None
    source = Path(spec.origin).parent
    site = workdir / "site"
    shutil.copytree(source, site / "reloader", ignore=shutil.ignore_patterns("__pycache__"))
    return site, _seal(site)


def snapshot_at(workdir: Path, ref: str) -> Path:
    """The reloader package as committed at git `ref`, in workdir/site-<ref> (for `against`)."""
    site = workdir / f"site-{re.sub(r'[^A-Za-z0-9._-]', '_', ref)}"
    site.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "reloader"], check=True, capture_output=True
    )
    subprocess.run(["tar", "-x", "-C", str(site)], input=archive.stdout, check=True)
    _seal(site)
    return site


def _seal(site: Path) -> str:
    """Compile the snapshot, open it to Apache's user; the digest of its sources."""
    compileall.compile_dir(site, quiet=1)
    digest = hashlib.sha256()
    for path in sorted((site / "reloader").rglob("*.py")):
        digest.update(path.relative_to(site).as_posix().encode() + b"\0" + path.read_bytes())
    for path in [site, *site.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return digest.hexdigest()[:12]

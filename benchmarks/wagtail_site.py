"""The real project: the site `wagtail start` makes, with what a developer adds in week one.

Nobody here writes Wagtail: its start template, its ~1,600 imported modules, its migrations
and its page tree are what a Django shop runs. The site is generated at benchmark time into
the run's temp dir (nothing of it is committed): `wagtail start`, the files the edits need,
`migrate` (which creates the home page) and one page added and published the way an editor
does. The edits measured:

- view: `home/views.py`, a view module wired into the URLconf that nothing at setup imports;
- models: `home/models.py`, the page model, seen on the page it renders (`/about/`);
- settings: the settings module the site runs with (`mysite/settings/dev.py`);
- ready: `feedback/views.py`, imported by the `signals.py` that `FeedbackConfig.ready()`
  imports, the habit that makes a view module part of Django's setup.

`migrate` takes about 20 s (185 migrations, CPU-bound): `Generation.start()` launches it and
`project()` waits for it, so a quick run can let it run beside its first servers; or a run
copies a site made before (`--wagtail-site`, as the test suite does).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from .project import Project, Target, count_modules, seal

NAME = "mysite"
APP = f"{NAME}.wsgi:application"
SETTINGS = f"{NAME}.settings.dev"
WAGTAIL = Path(sys.executable).parent / "wagtail"
EDITS = {
    "view": Target("home/views.py", "/bench/version/"),
    "models": Target("home/models.py", "/about/"),
    "settings": Target(f"{NAME}/settings/dev.py", "/bench/settings-version/"),
    "ready": Target("feedback/views.py", "/bench/ready-version/"),
}
MIGRATE_SECONDS = 600.0  # a bound, not an estimate: it takes ~20 s here

_HOME_VIEWS = """\
import os

from django.conf import settings
from django.http import HttpResponse

VERSION = "v1"


def version(request):
    return HttpResponse(f"{VERSION} pid={os.getpid()}", content_type="text/plain")


def settings_version(request):
    return HttpResponse(f"{settings.VERSION} pid={os.getpid()}", content_type="text/plain")
"""
_HOME_MODELS = """\
import os

from wagtail.models import Page

VERSION = "m1"


class HomePage(Page):
    def get_context(self, request, *args, **kwargs):
        context = super().get_context(request, *args, **kwargs)
        context["served_by"] = f"{VERSION} pid={os.getpid()}"
        return context
"""
_FEEDBACK = {
    "feedback/__init__.py": "",
    "feedback/apps.py": """\
from django.apps import AppConfig


class FeedbackConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "feedback"

    def ready(self):
        from . import signals  # noqa: F401  (connects the receivers)
""",
    "feedback/signals.py": """\
from django.dispatch import receiver
from wagtail.signals import page_published

from .views import thank_the_editor


@receiver(page_published)
def on_publish(sender, instance, **kwargs):
    thank_the_editor(instance)
""",
    "feedback/views.py": """\
import os

from django.http import HttpResponse

VERSION = "r1"
PUBLISHED = []


def thank_the_editor(page):
    PUBLISHED.append(page.title)


def ready_version(request):
    return HttpResponse(f"{VERSION} pid={os.getpid()}", content_type="text/plain")
""",
}
_URL_IMPORTS = (
    "from feedback import views as feedback_views\nfrom home import views as home_views\n"
)
_URLS = """\
    path("bench/version/", home_views.version),
    path("bench/settings-version/", home_views.settings_version),
    path("bench/ready-version/", feedback_views.ready_version),
"""
# migrate creates the home page (the start template's own migration); the page the models edit
# is seen on is added under it and published, as an editor does in the admin.
_MIGRATE = """
import django

django.setup()
from django.core.management import call_command

call_command("migrate", interactive=False, verbosity=0)
from home.models import HomePage

home = HomePage.objects.get(slug="home")
about = home.add_child(instance=HomePage(title="About", slug="about"))
about.save_revision().publish()
from feedback.views import PUBLISHED

assert PUBLISHED == ["About"], PUBLISHED
"""


def missing() -> str | None:
    """Why the site cannot be made here, or None."""
    if importlib.util.find_spec("wagtail") is None or not WAGTAIL.exists():
        return "wagtail is not installed (pip install -e '.[bench]')"
    return None


def _replace_once(path: Path, old: str, new: str) -> None:
    """Change generated code at an anchor that must be there once: a start template that moved
    on fails here, loudly, not in a server."""
    text = path.read_text(encoding="utf-8")
    if text.count(old) != 1:
        raise RuntimeError(f"wagtail start made an unexpected {path.name}: no single {old!r}")
    path.write_text(text.replace(old, new), encoding="utf-8")


def _customise(root: Path) -> None:
    """What the edits need, added as a developer would."""
    (root / "home" / "views.py").write_text(_HOME_VIEWS, encoding="utf-8")
    (root / "home" / "models.py").write_text(_HOME_MODELS, encoding="utf-8")
    for relative, text in _FEEDBACK.items():
        path = root / relative
        path.parent.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
    _replace_once(
        root / "home" / "templates" / "home" / "home_page.html",
        "{% block content %}\n",
        '{% block content %}\n<p id="served-by">{{ served_by }}</p>\n',
    )
    settings = root / NAME / "settings"
    _replace_once(settings / "base.py", '    "home",\n', '    "home",\n    "feedback",\n')
    with (settings / "dev.py").open("a", encoding="utf-8") as file:
        file.write('\nVERSION = "s1"\n')
    urls = root / NAME / "urls.py"
    urls.write_text(_URL_IMPORTS + urls.read_text(encoding="utf-8"), encoding="utf-8")
    _replace_once(urls, "urlpatterns = [\n", "urlpatterns = [\n" + _URLS)


class Generation:
    """One Wagtail site in workdir/name: `start()` makes it and launches `migrate`,
    `project()` waits for that and returns the project. Given a `template` (a site an
    earlier `Generation` made and `ready()` returned), the site is a copy of it instead:
    no `wagtail start`, no `migrate`."""

    def __init__(self, workdir: Path, name: str, template: Path | None = None) -> None:
        self.root = workdir / name
        self.name = name
        self.template = template
        self._migrate: subprocess.Popen[bytes] | None = None
        self._log = workdir / f"{name}-migrate.log"
        self._ready = False

    def start(self) -> None:
        if self._migrate is not None or self.root.exists():
            return
        if self.template is not None:
            shutil.copytree(self.template, self.root, symlinks=True)
            self._ready = True
            return
        self.root.mkdir()
        subprocess.run(
            [str(WAGTAIL), "start", NAME, str(self.root)],
            check=True,
            capture_output=True,
            timeout=120,
        )
        _customise(self.root)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": SETTINGS, "PYTHONPATH": str(self.root)}
        with self._log.open("wb") as log:
            self._migrate = subprocess.Popen(
                [sys.executable, "-c", _MIGRATE],
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def ready(self) -> Path:
        """The migrated site's root, once `migrate` is done (started now if need be)."""
        self.start()
        if self._ready:
            return self.root
        assert self._migrate is not None
        try:
            code = self._migrate.wait(timeout=MIGRATE_SECONDS)
        except subprocess.TimeoutExpired:
            self._migrate.kill()
            self._migrate.wait()
            raise
        if code != 0:
            tail = self._log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"migrating the Wagtail site failed ({code}):\n{tail}")
        seal(self.root)
        self._ready = True
        return self.root

    def project(self) -> Project:
        self.ready()
        return Project(
            name=self.name,
            root=self.root,
            app=APP,
            settings=SETTINGS,
            generated_modules=0,
            modules_loaded=count_modules(self.root, APP, SETTINGS),
            view=EDITS["view"],
            edits=EDITS,
        )

    def stop(self) -> None:
        """Kill a migrate still running (an interrupted run)."""
        if self._migrate is not None and self._migrate.poll() is None:
            self._migrate.kill()
            self._migrate.wait()

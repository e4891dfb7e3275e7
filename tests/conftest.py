"""Fixtures for the end-to-end tests: project copies and a gunicorn launcher."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

# Make `import support` work whatever pytest's import mode is.
sys.path.insert(0, str(Path(__file__).resolve().parent))
# And `import benchmarks` (its live_reload module is shared with the browser tests): appended,
# so an installed reloader still wins over the checkout's.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from support import (
    PreforkServer,
    clean_env,
    copy_project,
    free_port,
    try_get,
    wait_until,
)

from benchmarks.wagtail_site import Generation, missing

REPO = Path(__file__).resolve().parent.parent
DEMO_SRC = REPO / "deploy_examples" / "demo"
PLAIN_SRC = REPO / "tests" / "fixtures" / "plainapp"
GUNICORN_CONF = REPO / "deploy_examples" / "gunicorn" / "gunicorn.conf.py"

MARKERS = {
    "gunicorn": "end-to-end tests running real gunicorn servers",
    "browser": "tests driving headless Chromium",
    "bench": "the benchmark's quick run (about two minutes)",
}


def pytest_configure(config: pytest.Config) -> None:
    for name, doc in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {doc}")


_WAGTAIL = pytest.StashKey[Generation]()


def pytest_collection_finish(session: pytest.Session) -> None:
    """When a selected test needs the Wagtail site, start making it now: its `migrate` (about
    20 s of one core) then runs beside the tests before it."""
    if missing() is None and any(
        "wagtail_template" in getattr(item, "fixturenames", ()) for item in session.items
    ):
        workdir = session.config._tmp_path_factory.mktemp("wagtail")  # type: ignore[attr-defined]
        generation = session.config.stash[_WAGTAIL] = Generation(workdir, "site")
        generation.start()


def pytest_unconfigure(config: pytest.Config) -> None:
    generation = config.stash.get(_WAGTAIL, None)
    if generation is not None:
        generation.stop()


@pytest.fixture(scope="session")
def wagtail_template(request: pytest.FixtureRequest) -> Path:
    """The site `wagtail start` makes, customised and migrated (see benchmarks/wagtail_site),
    made once for the session: tests copy it, never edit it."""
    reason = missing()
    if reason is not None:
        pytest.skip(reason)
    return request.config.stash[_WAGTAIL].ready()


@pytest.fixture
def demo_project(tmp_path: Path) -> Path:
    """A private copy of deploy_examples/demo that the test may edit freely."""
    return copy_project(DEMO_SRC, tmp_path / "demo")


@pytest.fixture
def plain_project(tmp_path: Path) -> Path:
    """A private copy of the plain WSGI app fixture."""
    return copy_project(PLAIN_SRC, tmp_path / "plainapp")


StartGunicorn = Callable[..., PreforkServer]


def _workers_from(args: tuple[str, ...], default: int) -> int:
    """The number of workers `args` asks for: as for gunicorn, the last `-w` counts."""
    for i in range(len(args) - 2, -1, -1):
        if args[i] in ("-w", "--workers"):
            return int(args[i + 1])
    return default


@pytest.fixture
def gunicorn(tmp_path: Path) -> Iterator[StartGunicorn]:
    """Start `<python> -m gunicorn -b 127.0.0.1:<free port> --chdir <cwd> *args`.

    ``start(*args, cwd=..., env={...}, ready="/", warm=None, workers=None)`` returns a running
    PreforkServer. ``ready`` is a path polled until it answers (any status); None skips
    waiting, for servers expected to fail. ``warm`` is a slow path used to make every worker
    answer once (see PreforkServer.warm). Every server is stopped at teardown, and the
    teardown fails if any of its processes survives.
    """
    servers: list[PreforkServer] = []

    def start(
        *args: str,
        cwd: Path,
        env: Mapping[str, str] | None = None,
        ready: str | None = "/",
        warm: str | None = None,
        workers: int | None = None,
        helpers: tuple[str, ...] = (),
    ) -> PreforkServer:
        port = free_port()
        run_dir = tmp_path / f"gunicorn-{len(servers)}"
        run_dir.mkdir()
        # The control socket defaults to $XDG_RUNTIME_DIR or ~/.gunicorn: keep each server's
        # private so parallel or leftover servers never collide.
        full_env = clean_env({"XDG_RUNTIME_DIR": str(run_dir), **(env or {})})
        argv = [
            sys.executable, "-m", "gunicorn",
            "-b", f"127.0.0.1:{port}",
            "--chdir", str(cwd),
            *args,
        ]  # fmt: skip
        server = PreforkServer(
            argv=argv,
            log_path=run_dir / "server.log",
            env=full_env,
            cwd=cwd,
            base_url=f"http://127.0.0.1:{port}",
            workers=workers or _workers_from(args, 4 if "-c" in args else 1),
            helpers=helpers,
        )
        servers.append(server)
        server.start()
        if ready is not None:
            wait_until(
                lambda: server.check_alive() or try_get(server.url(ready)),
                message=lambda: f"gunicorn to answer {ready}:\n{server.log_tail()}",
            )
            server.wait_workers()
        if warm is not None:
            server.warm(warm)
        return server

    yield start
    stop_servers(servers)


def stop_servers(servers: list[PreforkServer]) -> None:
    """Stop every server, newest first, print its log, and fail if any process survived."""
    failures = []
    for server in reversed(servers):
        try:
            server.stop()
        except AssertionError as exc:
            failures.append(str(exc))
        # Shown by pytest only when the test fails: the log is the first thing to read, whole
        # once the server stopped and its output was copied. "slow: started" lines of
        # warm-ups are noise there.
        lines = [ln for ln in server.log().splitlines() if not ln.startswith("slow: started")]
        print(f"----- log of {' '.join(server.argv[3:])} ({server.log_path})")
        print("\n".join(lines[-300:]))
    assert not failures, failures


# Worker setups the suite runs under; always more than one worker, as the contract is about
# multi-process servers.
WORKER_ARGS: dict[str, tuple[str, ...]] = {
    "sync": ("-k", "sync", "-w", "2"),
    "gthread": ("-k", "gthread", "-w", "2", "--threads", "4"),
    "gevent": ("-k", "gevent", "-w", "2"),
}
DEMO_ENV = {"RELOADER_APP": "demo.wsgi:application", "DJANGO_SETTINGS_MODULE": "demo.settings"}
DEMO_WARM = "/slow/?s=0.3"
PLAIN_WARM = "/slow?s=0.3"


@pytest.fixture
def demo_server(gunicorn: StartGunicorn, demo_project: Path) -> StartGunicorn:
    """``start(worker_class, *more_args, env={...}, warm=True, ready="/")``: the demo project
    under ``reloader.wsgi:application``; with ``warm`` every worker has served a request."""

    def start(
        worker_class: str = "gthread",
        *args: str,
        env: Mapping[str, str] | None = None,
        warm: bool = True,
        ready: str | None = "/",
    ) -> PreforkServer:
        return gunicorn(
            *WORKER_ARGS[worker_class], *args, "reloader.wsgi:application",
            cwd=demo_project,
            env={**DEMO_ENV, **(env or {})},
            warm=DEMO_WARM if warm else None,
            ready=ready,
        )  # fmt: skip

    return start


@pytest.fixture
def plain_server(gunicorn: StartGunicorn, plain_project: Path) -> StartGunicorn:
    """``start(worker_class, *more_args, env={...}, warm=True, ready="/")``: the plain WSGI
    app through a user file ``dev_wsgi.py`` calling ``reloader.wrap``."""
    (plain_project / "dev_wsgi.py").write_text(
        'from reloader import wrap\n\napplication = wrap("plainapp:application")\n'
    )

    def start(
        worker_class: str = "gthread",
        *args: str,
        env: Mapping[str, str] | None = None,
        warm: bool = True,
        ready: str | None = "/",
    ) -> PreforkServer:
        return gunicorn(
            *WORKER_ARGS[worker_class], *args, "dev_wsgi:application",
            cwd=plain_project,
            env=env,
            warm=PLAIN_WARM if warm else None,
            ready=ready,
        )  # fmt: skip

    return start

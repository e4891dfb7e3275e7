"""Launchers for Apache/mod_wsgi, mod_wsgi-express, nginx, uWSGI and gunicorn-on-a-unix-socket.

Built on support.py. What is special about these servers:

* Apache refuses to serve as root. When the tests run as root, Apache's children, the
  mod_wsgi daemon processes and nginx's workers run as an unprivileged user (www-data, see
  apache_access.py), which must read the interpreter, the venv, the reloader package and the
  project. pytest's tmp_path is 0700, so every server of a test shares one temp directory of
  our own, mode 0755, removed at the end (``Launcher``).
* The shipped example configurations are used as they are; only ports and paths are
  substituted, and each substitution must match exactly once, so that an edit of an example
  that the tests no longer understand fails loudly instead of testing something else.
* A missing Apache or nginx skips the tests with a reason saying what to install, except under
  CI (env CI=true), where it is a failure: CI must never go green by skipping.
"""

from __future__ import annotations

import contextlib
import functools
import grp
import os
import pwd
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

import pytest
from apache_access import missing_access, server_user
from support import (
    PreforkServer,
    Server,
    clean_env,
    copy_project,
    free_port,
    group_members,
    try_get,
    wait_until,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "deploy_examples"
APACHE_EXAMPLE = EXAMPLES / "apache"
EXPRESS_EXAMPLE = EXAMPLES / "mod_wsgi-express"
STAGING_EXAMPLE = EXAMPLES / "staging"
UWSGI_EXAMPLE = EXAMPLES / "uwsgi"

CI = os.environ.get("CI", "").lower() == "true"
# The daemons inherit it; en_US.UTF-8 is often not generated, C.UTF-8 always exists.
LOCALE_ENV = {"LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def unavailable(reason: str) -> NoReturn:
    """Skip, or fail under CI, where a missing server must not pass as a skipped test."""
    if CI:
        pytest.fail(f"{reason} (CI=true: required)", pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- installation


@dataclass(frozen=True)
class ApacheInstall:
    httpd: str  # the Apache binary mod_wsgi was built for (apache2 on Debian, httpd elsewhere)
    modules: str  # Apache's module directory
    mod_wsgi_so: str  # mod_wsgi built into this venv
    express: str  # this venv's mod_wsgi-express


def _query(argv: Sequence[str]) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


@functools.cache
def _find_apache() -> ApacheInstall | str:
    """The Apache to use, or why there is none."""
    install = "apt-get install apache2 apache2-dev"
    apxs = shutil.which("apxs") or shutil.which("apxs2")
    if apxs is None:
        return f"Apache's apxs not found: {install}"
    httpd = Path(_query([apxs, "-q", "SBINDIR"])) / _query([apxs, "-q", "TARGET"])
    if not httpd.exists():
        return f"{httpd} (named by apxs) not found: {install}"
    express = Path(sys.executable).with_name("mod_wsgi-express")
    if not express.exists():
        return (
            f"mod_wsgi is not installed in {sys.prefix}: {install}, then "
            "pip install --no-cache-dir mod_wsgi"
        )
    return ApacheInstall(
        httpd=str(httpd),
        modules=_query([apxs, "-q", "LIBEXECDIR"]),
        mod_wsgi_so=_query([str(express), "module-location"]),
        express=str(express),
    )


def require_apache(workdir: Path) -> ApacheInstall:
    found = _find_apache()
    if isinstance(found, str):
        unavailable(found)
    user = server_user()
    if user is not None:
        problems = missing_access(user, [workdir])
        if problems:
            unavailable(
                f"Apache's user {user} {'; '.join(problems)}: run "
                f"`{sys.executable} tests/apache_access.py` as root once"
            )
    return found


def require_nginx() -> str:
    # Debian keeps it in /usr/sbin, which a non-root PATH may lack.
    nginx = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if nginx is None:
        unavailable("nginx not found: apt-get install nginx")
    return nginx


def require_uwsgi() -> str:
    """This venv's uwsgi binary (pip builds it against this interpreter)."""
    binary = Path(sys.executable).with_name("uwsgi")
    if not binary.exists():
        unavailable(
            f"uWSGI is not installed in {sys.prefix}: pip install uwsgi "
            "(needs a C compiler and the Python headers)"
        )
    return str(binary)


def run_user_group() -> tuple[str, str]:
    """Whom Apache (User/Group) and nginx (user) switch to; ignored when not started as root."""
    user = server_user()
    if user is not None:
        return user, grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name
    return pwd.getpwuid(os.geteuid()).pw_name, grp.getgrgid(os.getegid()).gr_name


# --------------------------------------------------------------------------- config editing


def substitute(text: str, replacements: dict[str, str], source: str) -> str:
    """Replace each regex (multiline) by its replacement; each must match exactly once."""
    for pattern, replacement in replacements.items():
        text, count = re.subn(pattern, lambda _m, r=replacement: r, text, flags=re.M)
        assert count == 1, f"{source}: expected one match of {pattern!r}, found {count}"
    return text


def demo_vhost(project: Path, wsgi_dir: Path, port: int, *, embedded: bool = False) -> str:
    """deploy_examples/apache/demo.conf with this machine's paths and port.

    ``embedded`` turns it into the embedded-mode misconfiguration the reloader must detect:
    no WSGIDaemonProcess/WSGIProcessGroup, the venv and project given server-wide instead.
    """
    source = APACHE_EXAMPLE / "demo.conf"
    text = substitute(
        source.read_text(),
        {
            r"^Define DEMO_VENV .*$": f"Define DEMO_VENV {sys.prefix}",
            r"^Define DEMO_PROJECT .*$": f"Define DEMO_PROJECT {project}",
            r"^Define DEMO_WSGI_DIR .*$": f"Define DEMO_WSGI_DIR {wsgi_dir}",
            r"<VirtualHost \*:80>": f"<VirtualHost *:{port}>",
        },
        str(source),
    )
    if embedded:
        text = substitute(
            text,
            {
                r"^\s*WSGIDaemonProcess (?:.*\\\n)*.*\n": "",
                r"^\s*WSGIProcessGroup .*\n": "",
                r" process-group=\S+ application-group=\S+$": "",
                r"^<VirtualHost": "WSGIPythonHome ${DEMO_VENV}\n"
                "WSGIPythonPath ${DEMO_PROJECT}\n<VirtualHost",
            },
            f"{source} (embedded)",
        )
    return text


# --------------------------------------------------------------------------- servers


def wsgi_daemon_pids(pgid: int) -> list[int]:
    """mod_wsgi daemon processes of the server group: their display-name is "(wsgi:...)"."""
    pids = []
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"(wsgi:"):
                pids.append(pid)
    return pids


@dataclass
class FileLogServer(PreforkServer):
    """A server that writes (some of) its log to files rather than to its output.

    ``log()`` is the captured stdout/stderr followed by those files (Apache's error log:
    print() output, tracebacks and mod_wsgi's own messages land there).
    """

    log_files: tuple[Path, ...] = ()

    def log(self) -> str:
        parts = [super().log()]
        for path in self.log_files:
            with contextlib.suppress(FileNotFoundError):
                parts.append(path.read_text(errors="replace"))
        return "".join(parts)


@dataclass
class ApacheServer(FileLogServer):
    """Apache running mod_wsgi daemon processes; its "workers" are the daemon processes."""

    def worker_pids(self) -> list[int]:
        return wsgi_daemon_pids(self.pid)


@dataclass
class Launcher:
    """The servers of one test, sharing a temp directory their unprivileged users can read.

    Use as a context manager: on exit every server is stopped (SIGTERM, then SIGKILL, and
    checked to leave no process) and the directory is removed.
    """

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="reloader-e2e-")))
    servers: list[Server] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.root.chmod(0o755)  # mkdtemp makes it 0700

    def __enter__(self) -> Launcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        failures = []
        for server in reversed(self.servers):
            try:
                server.stop()
            except AssertionError as exc:
                failures.append(str(exc))
            # Captured by pytest, and shown only when the test failed.
            print(f"----- log of {' '.join(server.argv[:3])}\n{server.log_tail(300)}")
        self.servers.clear()
        shutil.rmtree(self.root, ignore_errors=True)
        assert not failures, failures

    def directory(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(mode=0o755)
        path.chmod(0o755)  # whatever the umask
        return path

    def copy(self, src: Path, name: str | None = None) -> Path:
        """A copy of ``src`` that the servers' users can read, whatever the checkout's modes."""
        dst = copy_project(src, self.root / (name or src.name))
        for path in [dst, *dst.rglob("*")]:
            path.chmod(path.stat().st_mode | (0o555 if path.is_dir() else 0o444))
        return dst

    def _start(self, server: Server, ready: str | None) -> None:
        self.servers.append(server)
        server.start()
        if ready is not None:
            wait_until(
                lambda: server.check_alive() or try_get(server.url(ready)),
                message=lambda: f"{server.argv[0]} to answer {ready}:\n{server.log_tail()}",
            )

    # ---- Apache with the shipped configuration

    def apache(
        self, vhost: str, port: int, *, processes: int = 2, ready: str | None = "/version/"
    ) -> ApacheServer:
        """Run deploy_examples/apache/standalone.conf including ``vhost`` (a config text)."""
        apache = require_apache(self.root)
        server_root = self.directory(f"apache-{len(self.servers)}")
        vhost_path = server_root / "vhost.conf"
        vhost_path.write_text(vhost)
        user, group = run_user_group()
        env = clean_env(
            {
                **LOCALE_ENV,
                "DEMO_SERVER_ROOT": str(server_root),
                "DEMO_PORT": str(port),
                "DEMO_MODULES": apache.modules,
                "DEMO_MOD_WSGI": apache.mod_wsgi_so,
                "DEMO_RUN_USER": user,
                "DEMO_RUN_GROUP": group,
                "DEMO_VHOST": str(vhost_path),
            }
        )
        server = ApacheServer(
            argv=[apache.httpd, "-f", str(APACHE_EXAMPLE / "standalone.conf"), "-DFOREGROUND"],
            log_path=server_root / "stdout.log",
            env=env,
            cwd=server_root,
            base_url=f"http://127.0.0.1:{port}",
            workers=processes,
            log_files=(server_root / "error.log",),
        )
        self._start(server, ready)
        return server

    def mod_wsgi_express(
        self, script: Path, *args: str, cwd: Path, processes: int = 2, ready: str | None = "/"
    ) -> ApacheServer:
        """``mod_wsgi-express start-server <script> *args`` on a free port, logging to stdout."""
        apache = require_apache(self.root)
        port = free_port()
        server_root = self.directory(f"express-{len(self.servers)}")
        user, group = run_user_group()
        # --user/--group only matter (and are only allowed to differ from us) as root.
        as_user = ["--user", user, "--group", group] if os.geteuid() == 0 else []
        argv = [
            apache.express, "start-server", str(script), *args,
            "--host", "127.0.0.1", "--port", str(port),
            "--server-root", str(server_root), "--log-to-terminal", "--startup-log",
            *as_user,
        ]  # fmt: skip
        server = ApacheServer(
            argv=argv,
            log_path=server_root / "stdout.log",
            env=clean_env(LOCALE_ENV),
            cwd=cwd,
            base_url=f"http://127.0.0.1:{port}",
            workers=processes,
        )
        self._start(server, ready)
        return server

    # ---- uWSGI

    def uwsgi(
        self,
        *args: str,
        cwd: Path,
        workers: int = 2,
        socket: Path | None = None,
        base_url: str = "",
        ready: str | None = "/version/",
    ) -> PreforkServer:
        """``uwsgi *args`` (an ini file or options); waits for ``ready`` at ``base_url``, or
        for the unix ``socket``, then for its workers: the master's children."""
        run_dir = self.directory(f"uwsgi-{len(self.servers)}")
        server = PreforkServer(
            argv=[require_uwsgi(), *args],
            log_path=run_dir / "server.log",
            env=clean_env(),
            cwd=cwd,
            base_url=base_url,
            workers=workers,
        )
        self._start(server, ready=ready if socket is None else None)
        if socket is not None:
            wait_until(
                lambda: server.check_alive() or socket.is_socket(),
                message=lambda: f"uWSGI to listen on {socket}:\n{server.log_tail()}",
            )
        if workers and (ready is not None or socket is not None):  # 0: no master, no forks
            server.wait_workers()
        return server

    # ---- the staging stack: nginx -> unix socket -> gunicorn

    def gunicorn_unix(self, *args: str, cwd: Path, socket: Path, workers: int) -> PreforkServer:
        """gunicorn ``*args`` bound to the unix ``socket`` only; waits for its workers."""
        run_dir = self.directory(f"gunicorn-{len(self.servers)}")
        argv = [sys.executable, "-m", "gunicorn", *args, "--bind", f"unix:{socket}"]
        server = PreforkServer(
            argv=argv,
            log_path=run_dir / "server.log",
            # Its control socket goes to $XDG_RUNTIME_DIR: keep it private to this server.
            env=clean_env({"XDG_RUNTIME_DIR": str(run_dir)}),
            cwd=cwd,
            workers=workers,
        )
        self._start(server, ready=None)
        wait_until(
            lambda: server.check_alive() or socket.is_socket(),
            message=lambda: f"gunicorn to listen on {socket}:\n{server.log_tail()}",
        )
        server.wait_workers()
        return server

    def nginx(self, site: str, port: int, ready: str | None = "/version/") -> FileLogServer:
        """nginx serving the server block(s) ``site`` with everything under its own prefix."""
        nginx = require_nginx()
        prefix = self.directory(f"nginx-{len(self.servers)}")
        (prefix / "site.conf").write_text(site)
        user, group = run_user_group()
        # The worker user, so that root's nginx does not serve as root; pointless otherwise.
        user_line = f"user {user} {group};" if os.geteuid() == 0 else ""
        (prefix / "nginx.conf").write_text(NGINX_MAIN.format(prefix=prefix, user_line=user_line))
        server = FileLogServer(
            argv=[nginx, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            log_path=prefix / "stdout.log",
            env=clean_env(),
            cwd=prefix,
            base_url=f"http://127.0.0.1:{port}",
            log_files=(prefix / "error.log", prefix / "access.log"),
        )
        self._start(server, ready)
        return server


# The smallest main configuration around a shipped server block: pid, logs and the temp
# directories (compiled in under /var/lib/nginx) all under the prefix.
NGINX_MAIN = """\
{user_line}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log notice;
events {{
    worker_connections 64;
}}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    include {prefix}/site.conf;
}}
"""

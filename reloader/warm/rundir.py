"""The run directory: how the arbiter, its workers and the watcher process share state.

Every report is a small JSON file replaced atomically, so a reader never sees half of one,
and the watcher process learns of a new or updated report the way it learns of any change:
from a file event in a directory it watches. The directory is also the one the workers share
as any server's processes do (see `rendezvous`): the refresh log, the last restart's record.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..rendezvous import process_directory, replace_file
from ..settings import RUN_DIR_VARIABLE

__all__ = ["ENV", "Report", "RunDir"]

REEXEC = "reexec-request"
"""Present while the supervisor wants the arbiter to re-exec (no .json: not a report). A file
of its own, so a warm-up asked for meanwhile cannot overwrite it: every signal to the arbiter
means 'warm up', and 're-exec' too while this file exists."""
REBUILD = "rebuild-request"
"""The same for replacing the Django tier (see `tier.py`)."""
REPLACE = "replace-"
"""`replace-<pid>`: a stopping worker asks for its replacement (see `request_replacement`)."""

PREFIX = "reloader-warm-"
"""A run directory's name before the arbiter's pid and start time: what the next arbiter
looks for to remove those of arbiters killed before they could (SIGKILL, a crash)."""
ENV = RUN_DIR_VARIABLE
"""Set by the arbiter for its workers: its presence means 'the arbiter watches for you'."""


@dataclass
class Report:
    """What one process depends on."""

    pid: int
    started_ns: int = 0
    """When the process started loading code (`time.time_ns()`)."""
    files: list[str] = field(default_factory=list)
    """Exact files to watch."""
    patterns: list[tuple[str, str, bool]] = field(default_factory=list)
    """(directory, name glob, recursive) to watch."""
    refresh_patterns: list[tuple[str, str, bool]] = field(default_factory=list)
    """Patterns declared by Django apps: a non-Python change there is first offered to the
    workers' `file_changed` receivers instead of restarting them."""
    modules: list[str] = field(default_factory=list)
    """Third-party modules imported, in import order: what the arbiter may import for the
    next workers."""
    loaded: bool = True
    """Whether the application loaded (False: the worker serves the error page)."""
    django_settings: str = ""
    """DJANGO_SETTINGS_MODULE of a worker serving a Django project, else empty."""
    sys_path: list[str] = field(default_factory=list)
    """The worker's `sys.path` once loaded: where the arbiter finds the project."""
    extra_files: list[str] = field(default_factory=list)
    ignore: list[str] = field(default_factory=list)
    polling: bool = False
    """The worker's `extra_files`, `ignore` and `polling` options, which `wrap()` may have
    given it rather than the environment the supervisor and the arbiter read."""
    environ: dict[str, str] = field(default_factory=dict)
    """The worker's environment once loaded: what its WSGI file set before Django's setup
    (`load_dotenv()`, `os.environ.setdefault(...)`), which the arbiter's setup must see."""


class RunDir:
    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def create(cls) -> RunDir:
        """This arbiter's, in the temporary directory: `reloader-warm-<pid>-...`."""
        return cls(process_directory(PREFIX))

    def recreate(self) -> bool:
        """Make the directory again if something removed it (a temp cleaner); True if so."""
        try:
            self.path.mkdir(mode=0o700)
        except FileExistsError:
            return False
        return True

    def _write(self, name: str, data: object) -> None:
        replace_file(self.path / name, json.dumps(data))

    def _read(self, name: str) -> object:
        try:
            return json.loads((self.path / name).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def write_report(self, kind: str, report: Report) -> None:
        """`kind` is 'worker', 'arbiter' or 'tier' (the Django tier's)."""
        self._write(_report_name(kind, report.pid), asdict(report))

    def remove_worker(self, pid: int) -> None:
        (self.path / f"worker-{pid}.json").unlink(missing_ok=True)

    def remove_tier(self) -> None:
        (self.path / _report_name("tier", 0)).unlink(missing_ok=True)

    def reports(self, kind: str) -> Iterator[Report]:
        pattern = _report_name(kind, "*")
        for path in sorted(self.path.glob(pattern)):
            report = self._report(path.name)
            if report is not None:
                yield report

    def worker_report(self, pid: int) -> Report | None:
        return self._report(f"worker-{pid}.json")

    def _report(self, name: str) -> Report | None:
        data = self._read(name)
        if not isinstance(data, dict):
            return None
        try:
            return _parse_report(data)
        except (TypeError, ValueError):
            return None  # not ours, or damaged: as good as no report

    def report_times(self) -> dict[str, int]:
        """Each report's name and modification time: cheaper than reading them, to tell
        whether any was written since."""
        times: dict[str, int] = {}
        try:
            entries = list(os.scandir(self.path))
        except FileNotFoundError:
            return times  # removed under us: the arbiter makes it again
        for entry in entries:
            if entry.name.endswith(".json"):
                with contextlib.suppress(FileNotFoundError):
                    times[entry.name] = entry.stat().st_mtime_ns
        return times

    def request_reexec(self) -> None:
        self._write(REEXEC, True)

    def take_reexec_request(self) -> bool:
        """Whether a re-exec was asked for since the last call."""
        return self._take(REEXEC)

    def request_rebuild(self, changed_ns: int) -> None:
        """Ask for a new Django tier: what it holds changed at `changed_ns`."""
        self._write(REBUILD, changed_ns)

    def take_rebuild_request(self) -> int | None:
        """When what the tier holds changed, if a new tier was asked for since the last call;
        a tier that began its imports after that has the change."""
        changed_ns = self._read(REBUILD)
        if not self._take(REBUILD):
            return None
        return changed_ns if isinstance(changed_ns, int) else time.time_ns()

    def request_replacement(self, pid: int) -> None:
        """A worker's, as it stops with requests in flight: fork its replacement now rather
        than once it has exited."""
        (self.path / f"{REPLACE}{pid}").touch()

    def take_replacement_requests(self) -> list[int]:
        """The workers that asked for their replacement since the last call."""
        pids = []
        for path in self.path.glob(f"{REPLACE}*"):
            pid = path.name.removeprefix(REPLACE)
            if self._take(path.name) and pid.isdigit():
                pids.append(int(pid))
        return pids

    def _take(self, name: str) -> bool:
        try:
            (self.path / name).unlink()
        except FileNotFoundError:
            return False
        return True


def _report_name(kind: str, pid: object) -> str:
    return f"worker-{pid}.json" if kind == "worker" else f"{kind}.json"


def _parse_report(data: dict[str, object]) -> Report:
    environ = data.get("environ", {})
    return Report(
        pid=int(data.get("pid", 0)),  # type: ignore[call-overload]
        started_ns=int(data.get("started_ns", 0)),  # type: ignore[call-overload]
        files=[str(f) for f in _list(data.get("files", []))],
        patterns=_triples(data.get("patterns", [])),
        refresh_patterns=_triples(data.get("refresh_patterns", [])),
        modules=[str(m) for m in _list(data.get("modules", []))],
        loaded=bool(data.get("loaded", True)),
        django_settings=str(data.get("django_settings", "")),
        sys_path=[str(p) for p in _list(data.get("sys_path", []))],
        extra_files=[str(e) for e in _list(data.get("extra_files", []))],
        ignore=[str(g) for g in _list(data.get("ignore", []))],
        polling=bool(data.get("polling", False)),
        environ={str(k): str(v) for k, v in environ.items()} if isinstance(environ, dict) else {},
    )


def _list(entries: object) -> list[object]:
    if not isinstance(entries, list):
        raise ValueError(f"not a list: {entries!r}")
    return entries


def _triples(entries: object) -> list[tuple[str, str, bool]]:
    triples = []
    for entry in _list(entries):
        directory, glob, recursive = _list(entry)
        triples.append((str(directory), str(glob), bool(recursive)))
    return triples

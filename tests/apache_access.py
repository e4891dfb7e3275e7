"""Let the unprivileged user that Apache runs as read what a mod_wsgi daemon process needs.

Apache refuses to serve as root (AH00526), so when the tests run as root its children and the
mod_wsgi daemon processes run as an unprivileged user (www-data, or $RELOADER_APACHE_USER).
That user must reach the Python installation (sys.base_prefix: pyenv puts it under /root,
mode 0700), the virtualenv (sys.prefix), the reloader package and the temp directory that
holds the test projects. Rather than opening those directories to everybody, this script adds
one ACL entry, ``u:<user>:x`` (traverse, not list), to each directory on the way that the user
cannot traverse. It never changes the mode bits, and it grants nothing inside the trees.

Run it once as root before the Apache tests (``.ci/run`` does):

    python tests/apache_access.py            # grant what is missing, then verify
    python tests/apache_access.py --check    # only report; exit 1 if something is missing

As a non-root user there is nothing to do: Apache then runs as that user.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def server_user() -> str | None:
    """The user Apache's children and daemons run as, or None when that is the current user."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("RELOADER_APACHE_USER")
    if name:
        return name
    for candidate in ("www-data", "apache", "nobody"):
        try:
            pwd.getpwnam(candidate)
        except KeyError:
            continue
        return candidate
    raise RuntimeError("no unprivileged user for Apache: set RELOADER_APACHE_USER")


def needed_paths(extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """Directories whose contents the daemon must read, computed for this interpreter."""
    spec = importlib.util.find_spec("reloader")
    # Not installed yet: the checkout it will be installed from.
    package_home = Path(spec.origin).resolve().parents[1] if spec and spec.origin else REPO
    paths = [Path(sys.prefix), Path(sys.base_prefix), package_home, Path(tempfile.gettempdir())]
    paths += extra
    unique: dict[Path, None] = {}
    for path in paths:
        unique[path.resolve()] = None
    return list(unique)


def _ancestors(paths: list[Path]) -> list[Path]:
    found: dict[Path, None] = {}
    for path in paths:
        for directory in reversed([path, *path.parents]):
            found[directory] = None
    return list(found)


def _failing_tests(user: str, flag: str, paths: list[Path]) -> list[Path]:
    """Paths for which `test <flag>` fails when run as *user* (ACLs and groups included)."""
    if not paths:
        return []
    script = f'for p do test {flag} "$p" || printf "%s\\n" "$p"; done'
    # runuser (util-linux, root only) applies the user's groups too, so ACLs and group
    # permissions count exactly as they will for Apache.
    command = ["runuser", "-u", user, "--", "sh", "-c", script, "sh", *map(str, paths)]
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return [Path(line) for line in out.splitlines()]


def _blocked(user: str, paths: list[Path]) -> list[Path]:
    """The directories that stop *user*: untraversable ones below traversable parents.

    Everything under /root fails `test -x` when only /root is closed; reporting (or granting)
    the deeper ones would be noise (or needless ACL entries).
    """
    failing = set(_failing_tests(user, "-x", _ancestors(paths)))
    return [d for d in sorted(failing) if not failing.intersection(d.parents)]


def missing_access(user: str, extra: list[Path] | tuple[Path, ...] = ()) -> list[str]:
    """What *user* lacks, as human-readable lines; empty when Apache can run the project."""
    paths = needed_paths(extra)
    blocked = _blocked(user, paths)
    if blocked:
        return [f"cannot traverse {d}" for d in blocked]
    return [f"cannot read {p}" for p in _failing_tests(user, "-r", paths)]


def grant(user: str, extra: list[Path] | tuple[Path, ...] = ()) -> list[Path]:
    """Add ``u:<user>:x`` to each directory on the way that *user* cannot traverse."""
    if shutil.which("setfacl") is None:
        raise RuntimeError("setfacl not found: install the 'acl' package")
    paths = needed_paths(extra)
    granted: list[Path] = []
    # Level by level: opening /root may be all it takes for the directories below it.
    while blocked := [d for d in _blocked(user, paths) if d not in granted]:
        for directory in blocked:
            subprocess.run(["setfacl", "-m", f"u:{user}:x", str(directory)], check=True)
        granted += blocked
    return granted


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report only, change nothing")
    parser.add_argument("paths", nargs="*", type=Path, help="more directories to make readable")
    args = parser.parse_args(argv)
    user = server_user()
    if user is None:
        print("not root: Apache runs as the current user, nothing to grant")
        return 0
    if not args.check:
        for directory in grant(user, args.paths):
            print(f"setfacl -m u:{user}:x {directory}")
    problems = missing_access(user, args.paths)
    for line in problems:
        print(f"{user} {line}", file=sys.stderr)
    if problems:
        if not args.check:
            print("a tree above is not readable by others: fix its modes", file=sys.stderr)
        return 1
    print(f"{user} can read {', '.join(map(str, needed_paths(args.paths)))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Let Apache's unprivileged user read the interpreter, the venv and the benchmark projects.

Reuses the test suite's helper (tests/apache_access.py: one `u:<user>:x` ACL entry per closed
directory on the way). Without it, falls back to the one grant this machine needs: traverse
on /root, where pyenv keeps the interpreter.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

from .project import REPO

HELPER = REPO / "tests" / "apache_access.py"


def _load_helper() -> ModuleType | None:
    if not HELPER.is_file():
        return None
    spec = importlib.util.spec_from_file_location("_bench_apache_access", HELPER)
    if spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def prepare(workdir: Path) -> tuple[str | None, str | None, str]:
    """(apache user or None, problem or None, what was done) for running mod_wsgi as root."""
    if os.geteuid() != 0:
        return None, None, "not root: Apache runs as the current user"
    helper = _load_helper()
    if helper is not None:
        user = helper.server_user()
        granted = helper.grant(user, [workdir])
        problems = helper.missing_access(user, [workdir])
        done = f"tests/apache_access.py granted u:{user}:x on {[str(p) for p in granted]}"
        return user, ("; ".join(problems) or None), done
    user = "www-data"
    if shutil.which("setfacl") is None:
        return user, "setfacl missing: cannot let www-data read the interpreter", "nothing"
    subprocess.run(["setfacl", "-m", f"u:{user}:x", "/root"], check=True)
    return user, None, f"fallback: setfacl -m u:{user}:x /root"

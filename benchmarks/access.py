"""Whether Apache's unprivileged user can read the interpreter, the venv and the projects.

Only checks, with the test suite's helper (tests/apache_access.py). Granting is that script's
job, run by hand (or by .ci/run): a benchmark run never changes a directory's permissions
behind the user's back. Where access is missing, the mod_wsgi tools are skipped with a reason
that names the command to run.
"""

from __future__ import annotations

import importlib.util
import os
import sys
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


def check(workdir: Path) -> tuple[str | None, str | None, str]:
    """(apache user or None, problem or None, what was found) for running mod_wsgi."""
    if os.geteuid() != 0:
        return None, None, "not root: Apache runs as the current user"
    helper = _load_helper()
    if helper is None:
        return "www-data", f"{HELPER} not found: cannot check Apache's access", "not checked"
    user: str = helper.server_user()
    problems: list[str] = helper.missing_access(user, [workdir])
    if not problems:
        return user, None, f"{user} can read the interpreter, the venv and the projects"
    problem = (
        f"Apache's user {user} {'; '.join(problems)}: run `{sys.executable} "
        f"tests/apache_access.py` as root once (it adds u:{user}:x ACL entries)"
    )
    return user, problem, "access missing; nothing changed"

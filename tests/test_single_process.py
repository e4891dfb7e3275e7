"""A server reloader has no strategy for (here wsgiref, run as one process): the process
re-executes itself on a change, as runserver does."""

from __future__ import annotations

import sys
from pathlib import Path

from support import Server, clean_env, edit, free_port, wait_for_body

SERVE = """
import sys
from wsgiref.simple_server import make_server
from reloader import wrap

make_server("127.0.0.1", int(sys.argv[1]), wrap("plainapp:application")).serve_forever()
"""


def test_wsgiref_process_reexecutes_itself_with_new_code(
    plain_project: Path, tmp_path: Path
) -> None:
    (plain_project / "serve.py").write_text(SERVE)
    port = free_port()
    server = Server(
        argv=[sys.executable, "serve.py", str(port)],
        log_path=tmp_path / "wsgiref.log",
        env=clean_env(),
        cwd=plain_project,
        base_url=f"http://127.0.0.1:{port}",
    )
    with server.start():
        first = wait_for_body(server.url("/"), "v1 pid=")
        edit(plain_project / "plainversion.py", '"v1"', '"v2"')
        second = wait_for_body(server.url("/"), "v2 pid=")
        # The same process, re-executed: same pid, new code.
        assert first.body.split("pid=")[1] == second.body.split("pid=")[1]
        server.wait_for_log("restarting process")

"""Library lookups shared by a server's processes (`reloader.libraries`)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from reloader.libraries import RECORD, _Lookups

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="lookups are shared on Linux only"
)


class Counting:
    def __init__(self, answers: dict[str, str | None]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, name: str) -> str | None:
        self.asked.append(name)
        return self.answers.get(name)


def test_an_answer_given_once_is_not_looked_up_again(tmp_path: Path) -> None:
    lookup = Counting({"c": "libc.so.6"})
    first, second = _Lookups(tmp_path / RECORD), _Lookups(tmp_path / RECORD)
    assert first.find("c", lookup) == "libc.so.6"
    assert first.find("gdal", lookup) is None
    assert second.find("c", lookup) == "libc.so.6"
    assert second.find("gdal", lookup) is None, "a library not found stays not found"
    assert lookup.asked == ["c", "gdal"]


def test_other_search_paths_ask_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lookup = Counting({})
    lookups = _Lookups(tmp_path / RECORD)
    lookups.find("gdal", lookup)
    monkeypatch.setenv("LD_LIBRARY_PATH", str(tmp_path))
    lookup.answers["gdal"] = str(tmp_path / "libgdal.so.36")
    assert lookups.find("gdal", lookup) == str(tmp_path / "libgdal.so.36")
    assert lookup.asked == ["gdal", "gdal"]


@pytest.mark.parametrize("content", ["", "{", "[1]", '{"basis": 1}', '{"found": []}'])
def test_a_damaged_record_is_as_good_as_none(tmp_path: Path, content: str) -> None:
    (tmp_path / RECORD).write_text(content)
    lookup = Counting({"c": "libc.so.6"})
    assert _Lookups(tmp_path / RECORD).find("c", lookup) == "libc.so.6"
    assert lookup.asked == ["c"]
    assert json.loads((tmp_path / RECORD).read_text())["found"] == {"c": "libc.so.6"}


# Each process counts the programs it starts (ldconfig, gcc, ld) through the audit hook.
PROCESS = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from reloader.libraries import share_library_lookups

    spawned = []
    sys.addaudithook(lambda event, args: event == "subprocess.Popen" and spawned.append(args))
    early = "ctypes.util" in sys.modules
    share_library_lookups(Path(sys.argv[1]))
    import ctypes.util

    found = [ctypes.util.find_library(name) for name in ("c", "surely-no-such-library")]
    print(early, len(spawned), found[0], found[1])
    """
)


@linux_only
@pytest.mark.parametrize("imported_before", [False, True])
def test_a_fresh_process_runs_no_program_for_a_lookup_made_before(
    tmp_path: Path, imported_before: bool
) -> None:
    script = ("import ctypes.util\n" if imported_before else "") + PROCESS

    def run() -> list[str]:
        done = subprocess.run(
            [sys.executable, "-c", script, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return done.stdout.split()

    early, spawned, libc, missing = run()
    assert early == str(imported_before)
    assert int(spawned) > 0, "the first process looks the libraries up"
    assert libc.startswith("libc.so") and missing == "None"
    assert run() == [str(imported_before), "0", libc, "None"]

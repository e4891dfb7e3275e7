"""Bytecode that passes for current after a same-second, same-size save."""

from __future__ import annotations

import os
import py_compile
from pathlib import Path

from reloader.bytecode import discard_bytecode, stale_bytecode


def test_same_second_same_size_save_is_stale_until_discarded(tmp_path: Path) -> None:
    source = tmp_path / "version.py"
    source.write_text('VERSION = "v3"\n')
    second = int(source.stat().st_mtime)
    os.utime(source, ns=(second * 10**9, second * 10**9))
    cache = Path(py_compile.compile(str(source)))
    assert stale_bytecode([source]) == set()  # compiled from what is on disk

    source.write_text('VERSION = "v4"\n')  # same size, and put in the same second
    later = second * 10**9 + 500_000_000
    os.utime(source, ns=(later, later))
    os.utime(cache, ns=(later - 1000, later - 1000))
    assert stale_bytecode([source]) == {source}

    discard_bytecode([source])
    assert not cache.exists()
    assert stale_bytecode([source]) == set()

"""Kernel events (inotify, FSEvents, kqueue) through watchfiles: no cost while nothing changes,
a save seen one to two steps (`STEP_MS`) after it."""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path

from .base import WatchfilesMonitor

__all__ = ["UNRELIABLE_FILESYSTEMS", "NativeMonitor", "parse_mounts", "unreliable_directories"]

UNRELIABLE_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "fakeowner", "drvfs"}
)
"""File systems whose changes made elsewhere (the host of a container or VM, another machine)
raise no local events; FUSE file systems count too."""


class NativeMonitor(WatchfilesMonitor):
    name = "native"
    force_polling = False


def parse_mounts(text: str) -> list[tuple[str, str]]:
    """(mount point, file system type) of each line of /proc/mounts, longest point first, so
    that /home/x/nfs comes before /. Spaces and other bytes in points come octal-escaped."""
    table = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 3:
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), fields[1])
            table.append((point, fields[2]))
    table.sort(key=lambda entry: len(entry[0]), reverse=True)
    return table


def _fstype(path: str, table: list[tuple[str, str]]) -> str:
    for point, fstype in table:
        if path == point or path.startswith(point.rstrip("/") + "/"):
            return fstype
    return ""


def unreliable_directories(
    directories: Collection[Path], mounts: str = "/proc/mounts"
) -> dict[Path, str]:
    """Each of `directories` on a file system without reliable events, with its type. A path
    is resolved first: a project reached through a symlink lives where the link points.
    Linux only: elsewhere nothing is known and nothing is returned."""
    try:
        with open(mounts, encoding="utf-8", errors="surrogateescape") as file:
            table = parse_mounts(file.read())
    except OSError:
        return {}
    found = {}
    for directory in directories:
        fstype = _fstype(os.path.realpath(directory), table)
        if fstype in UNRELIABLE_FILESYSTEMS or fstype.startswith("fuse"):
            found[directory] = fstype
    return found

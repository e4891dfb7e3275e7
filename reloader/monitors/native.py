"""Kernel events (inotify, FSEvents, kqueue) through watchfiles: no cost while nothing changes,
a save seen one to two steps (`STEP_MS`) after it."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from .base import WatchfilesMonitor

__all__ = ["UNRELIABLE_FILESYSTEMS", "NativeMonitor", "unreliable_filesystem"]

UNRELIABLE_FILESYSTEMS = frozenset(
    {"nfs", "nfs4", "cifs", "smb3", "smbfs", "9p", "virtiofs", "vboxsf", "fakeowner", "drvfs"}
)
"""File systems whose changes made elsewhere (the host of a container or VM, another machine)
raise no local events; FUSE file systems count too."""


class NativeMonitor(WatchfilesMonitor):
    name = "native"
    force_polling = False


def unreliable_filesystem(
    directories: Collection[Path], mounts: str = "/proc/mounts"
) -> str | None:
    """'<dir> is on <fstype>' for the first directory on a file system without reliable events,
    or None. Linux only: elsewhere nothing is known and None is returned."""
    try:
        with open(mounts, encoding="utf-8") as file:
            table = [line.split()[1:3] for line in file if len(line.split()) >= 3]
    except OSError:
        return None
    # Longest mount point first, so /home/x/nfs beats /.
    table.sort(key=lambda entry: len(entry[0]), reverse=True)
    for directory in directories:
        text = str(directory)
        for point, fstype in table:
            point = point.replace("\\040", " ")
            if text == point or text.startswith(point.rstrip("/") + "/"):
                if fstype in UNRELIABLE_FILESYSTEMS or fstype.startswith("fuse"):
                    return f"{directory} is on {fstype}"
                break
    return None

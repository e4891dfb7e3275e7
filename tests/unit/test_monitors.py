"""Monitor choice and the native backend against the real file system."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

from reloader.monitors import NativeMonitor, PollingMonitor, SplitMonitor, choose_monitor
from reloader.monitors.native import parse_mounts, unreliable_directories
from reloader.threads import StopFlag

MOUNTS = (
    "/dev/vda / ext4 rw 0 0\n"
    "server:/export /home/dev/nfs nfs4 rw 0 0\n"
    "grpcfuse /project fuse.grpcfuse rw 0 0\n"
    "share /media/my\\040share vboxsf rw 0 0\n"
)


def test_mount_table_longest_point_first_and_unescaped() -> None:
    assert parse_mounts(MOUNTS) == [
        ("/media/my share", "vboxsf"),
        ("/home/dev/nfs", "nfs4"),
        ("/project", "fuse.grpcfuse"),
        ("/", "ext4"),
    ]


def test_network_and_vm_mounts_are_found_per_directory(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    dirs = [Path("/srv/app"), Path("/home/dev/nfs/app"), Path("/project/app")]
    dirs += [Path("/media/my share/x"), Path("/home/dev/nfsother")]
    assert unreliable_directories(dirs, str(mounts)) == {
        Path("/home/dev/nfs/app"): "nfs4",
        Path("/project/app"): "fuse.grpcfuse",
        Path("/media/my share/x"): "vboxsf",
    }


def test_a_symlink_onto_a_network_mount_is_resolved_first(tmp_path: Path) -> None:
    real = tmp_path / "export" / "project"
    real.mkdir(parents=True)
    link = tmp_path / "project"
    link.symlink_to(real)
    mounts = tmp_path / "mounts"
    mounts.write_text(f"/dev/vda / ext4 rw 0 0\nserver:/x {tmp_path / 'export'} nfs rw 0 0\n")
    assert unreliable_directories([link], str(mounts)) == {link: "nfs"}


def test_only_the_directories_on_a_network_mount_are_polled(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(MOUNTS)
    nfs, local = Path("/home/dev/nfs/app"), Path("/usr/lib/python3/site-packages/django")
    monitor, reason = choose_monitor(False, [nfs, local], mounts=str(mounts))
    assert isinstance(monitor, SplitMonitor)
    assert monitor.groups([nfs, local]) == [([local], False), ([nfs], True)]
    assert reason == "/home/dev/nfs/app is on nfs4; the rest by kernel events"
    monitor, reason = choose_monitor(False, [nfs], mounts=str(mounts))
    assert isinstance(monitor, PollingMonitor) and reason == "/home/dev/nfs/app is on nfs4"
    monitor, reason = choose_monitor(False, [local], mounts=str(mounts))
    assert isinstance(monitor, NativeMonitor) and reason is None


def test_forced_polling() -> None:
    monitor, reason = choose_monitor(True, [])
    assert isinstance(monitor, PollingMonitor)
    assert reason is None


def test_native_monitor_sees_an_atomic_save(tmp_path: Path) -> None:
    target = tmp_path / "views.py"
    target.write_text("v = 1\n")
    stop = StopFlag()
    seen: set[Path] = set()
    batches = NativeMonitor().watch([tmp_path], stop)
    next(batches)  # first quiet tick: the watch is in place
    temp = tmp_path / ".views.py.tmp"
    temp.write_text("v = 2\n")
    temp.replace(target)
    for _ in range(40):  # 40 ticks of 250 ms at most
        seen |= next(batches)
        if target in seen:
            break
    stop.set()
    batches.close()
    assert target in seen


def test_split_monitor_sees_saves_in_native_and_polled_directories(tmp_path: Path) -> None:
    native, polled = tmp_path / "native", tmp_path / "polled"
    targets = []
    for directory in (native, polled):
        directory.mkdir()
        targets.append(directory / "views.py")
        targets[-1].write_text("v = 1\n")
    stop = StopFlag()
    seen: set[Path] = set()
    batches = SplitMonitor([polled]).watch([native, polled], stop)
    next(batches)  # the watches are in place
    for target in targets:
        target.write_text("v = 2\n")
    for _ in range(40):  # 40 ticks of 250 ms at most
        seen |= next(batches)
        if set(targets) <= seen:
            break
    stop.set()
    batches.close()
    assert set(targets) <= seen


def _save_within(target: Path, text: str, second: int, offset_ns: int) -> None:
    target.write_text(text)
    stamp = second * 1_000_000_000 + offset_ns
    os.utime(target, ns=(stamp, stamp))


def _seen_within(batches: Iterator[set[Path]], target: Path, ticks: int = 40) -> bool:
    return any(target in next(batches) for _ in range(ticks))  # ticks of 250 ms at most


def test_polling_sees_saves_within_one_second(tmp_path: Path) -> None:
    """The poll watcher keeps times in whole seconds: a save within the second of the one it
    last saw would go unseen. File times are set ahead in a second of their own, so that the
    saves fall in one second however slow the machine."""
    target = tmp_path / "views.py"
    second = time.time_ns() // 1_000_000_000 + 30
    _save_within(target, "v = 1\n", second, 100_000_000)
    stop = StopFlag()
    batches = PollingMonitor().watch([tmp_path], stop)
    next(batches)  # the watch is in place: the poller took its first look
    try:
        # A save in the second the poller saw when it started,
        _save_within(target, "v = 2\n", second, 200_000_000)
        assert _seen_within(batches, target)
        # and another in the second of the save it last reported.
        _save_within(target, "v = 3\n", second, 300_000_000)
        assert _seen_within(batches, target)
    finally:
        stop.set()
        batches.close()

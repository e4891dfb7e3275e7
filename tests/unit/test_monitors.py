"""Monitor choice and the native backend against the real file system."""

from __future__ import annotations

from pathlib import Path

from reloader.monitors import NativeMonitor, PollingMonitor, choose_monitor
from reloader.monitors.native import unreliable_filesystem
from reloader.threads import StopFlag


def test_network_and_vm_mounts_make_it_poll(tmp_path: Path) -> None:
    mounts = tmp_path / "mounts"
    mounts.write_text(
        "/dev/vda / ext4 rw 0 0\n"
        "server:/export /home/dev/nfs nfs4 rw 0 0\n"
        "grpcfuse /project fuse.grpcfuse rw 0 0\n"
    )
    assert unreliable_filesystem([Path("/srv/app")], str(mounts)) is None
    assert "nfs4" in (unreliable_filesystem([Path("/home/dev/nfs/app")], str(mounts)) or "")
    assert "fuse" in (unreliable_filesystem([Path("/project/app")], str(mounts)) or "")


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

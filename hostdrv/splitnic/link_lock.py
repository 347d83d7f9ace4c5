"""One driver per NIC: an exclusive lock on a link that cannot be shared.

Ref: flock(2); proc(5), /proc/locks.

Two processes programming the same queues corrupt each other's rings, so the
``mmio`` and ``sim`` links take ``flock(LOCK_EX)`` on a file of the link (the
mmio file itself, a ``.lock`` file beside the simulator's socket) for as long
as they are open.  The kernel drops the lock when the process exits, however
it exits.  A second opener fails at once with a one-line error naming the
holder's pid, read from /proc/locks.
"""

from __future__ import annotations

import fcntl
import os

from .errors import SplitnicError

__all__ = ["lock_exclusive", "holder_pid"]


def holder_pid(fd: int) -> int | None:
    """The pid holding a flock on the file open as ``fd``, from /proc/locks (None if not found)."""
    st = os.fstat(fd)
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            for line in f:
                parts = line.split()
                # "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF" ("->" marks waiters)
                if "->" not in parts and len(parts) >= 6 and parts[1] == "FLOCK" and parts[5] == key:
                    return int(parts[4])
    except OSError:
        pass
    return None


def lock_exclusive(path: str, where: str, *, create: bool = False) -> int:
    """Open ``path`` and take an exclusive flock on it; returns the descriptor (closing it unlocks).

    Raises a one-line :class:`SplitnicError` naming the holder when another
    process has it.
    """
    flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    fd = os.open(path, flags, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = holder_pid(fd)
        os.close(fd)
        who = f"process {pid}" if pid is not None else "another process"
        cmd = ""
        if pid is not None:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    cmd = " (" + f.read().replace(b"\0", b" ").decode(errors="replace").strip()[:80] + ")"
            except OSError:
                pass
        raise SplitnicError(f"{where} is in use by {who}{cmd}; one driver per NIC: stop it first") from None
    except BaseException:
        os.close(fd)
        raise
    return fd

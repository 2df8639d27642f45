"""A watchdog that ends a local Ray when the driver that started it dies, by any signal.

``python -m nas.distributed.reaper CMD...`` runs ``CMD`` (``ray start --head --block ...``)
as its child and becomes a *child subreaper* (Linux ``prctl(PR_SET_CHILD_SUBREAPER)``): every
process Ray starts, including the ones that detach into their own session (workers) or lose
their parent (agents), stays a descendant of the reaper. The driver holds the write end of
the reaper's stdin; the kernel closes it when the driver dies, even on SIGKILL, so the reaper
reads EOF and ends every descendant (SIGTERM, then SIGKILL after a grace period, repeated until
none is left). It also ends everything when ``CMD`` exits on its own. With ``--remove DIR``
it then deletes ``DIR`` (the local Ray's temp dir: sockets, session logs).

Example:
    >>> proc = subprocess.Popen([sys.executable, "-m", "nas.distributed.reaper", "--remove",
    ...                          "/tmp/nasray-x", "ray", "start", "--head", "--block"],
    ...                         stdin=subprocess.PIPE)
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

PR_SET_CHILD_SUBREAPER = 36
GRACE_S = 3.0  # SIGTERM to SIGKILL
POLL_S = 0.5


def become_subreaper() -> bool:
    """Adopt orphaned descendants (Linux only); whether it worked."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from ``/proc``)."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name may hold spaces or parentheses: fields follow the last ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        out[int(entry.name)] = int(fields[1])
    return out


def descendants(root: int) -> list[int]:
    """Every live descendant of ``root``."""
    children: dict[int, list[int]] = {}
    for pid, ppid in _parents().items():
        children.setdefault(ppid, []).append(pid)
    out, todo = [], list(children.get(root, []))
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _reap() -> None:
    """Collect exited children (orphans adopted by the subreaper included)."""
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def end_descendants(rounds: int = 10) -> None:
    """SIGTERM every descendant, SIGKILL what is left after :data:`GRACE_S`; repeat (orphans
    reparent to us as their parents die) until none is left."""
    me = os.getpid()
    for _ in range(rounds):
        pids = descendants(me)
        if not pids:
            return
        _signal_all(pids, signal.SIGTERM)
        deadline = time.monotonic() + GRACE_S
        while time.monotonic() < deadline and descendants(me):
            _reap()
            time.sleep(0.1)
        _signal_all(descendants(me), signal.SIGKILL)
        time.sleep(0.1)
        _reap()


def watch(cmd: list[str], remove: Path | None = None) -> int:
    """Run ``cmd`` until stdin reaches EOF (the driver died) or ``cmd`` exits; then end every
    descendant and delete the folder ``remove`` (e.g. the Ray's temp dir)."""
    become_subreaper()
    signal.signal(signal.SIGTERM, lambda *_: None)  # a stray SIGTERM must not skip the cleanup
    child = subprocess.Popen(cmd, stdin=subprocess.DEVNULL)
    stdin = sys.stdin.fileno()
    try:
        while child.poll() is None:
            ready, _, _ = select.select([stdin], [], [], POLL_S)
            if ready and not os.read(stdin, 4096):
                break  # EOF: the driver is gone
            _reap()
    finally:
        end_descendants()
        if remove is not None:
            shutil.rmtree(remove, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    """``[--remove DIR] CMD...``: :func:`watch` ``CMD``, deleting ``DIR`` at the end."""
    if argv[:1] == ["--remove"] and len(argv) > 2:
        return watch(argv[2:], Path(argv[1]))
    return watch(argv)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""A local Ray head that dies with its driver: ``ray start --head --block`` under a reaper.

The head runs as ``python -m nas.distributed.reaper ray start --head --block ...`` in its own
session (a Ctrl-C for the driver does not tear it down mid-shutdown). The driver keeps the
write end of the reaper's stdin and never writes to it; when the driver exits or is killed
(any signal, SIGKILL included) the kernel closes it and the reaper ends every process of that
Ray: GCS, raylet, dashboard and runtime-env agents, workers (see :mod:`nas.distributed.reaper`).
Everything binds to 127.0.0.1 on ports chosen free, so it cannot collide with another Ray.
The head's temp dir (``/tmp/nasray-*``: sockets, session logs) is deleted when it stops: by
:func:`stop_local_heads`, at this process's exit (after ``ray.shutdown()``), or by the reaper
when the driver is killed.

Example:
    >>> address = start_local_head(num_cpus=2)
    >>> ray.init(address=address)
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from nas.errors import ConfigError

START_TIMEOUT_S = 120.0
_READY = "Ray runtime started"
# the heads this process started (their reapers' stdin pipes must stay open while they run)
_HEADS: list[LocalHead] = []


def _free_ports(n: int) -> list[int]:
    """``n`` distinct ports free on 127.0.0.1 right now."""
    socks, ports = [], []
    try:
        for _ in range(n):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            socks.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in socks:
            sock.close()
    return ports


def head_command(num_cpus: int | None, ports: list[int], temp_dir: Path) -> list[str]:
    """The ``ray start`` command line of a private loopback head (``temp_dir``: its own, so
    it never becomes the machine's default ``ray_current_cluster``)."""
    gcs, node, objects, agent, agent_grpc, env_agent, metrics = ports
    ray_cli = str(Path(sys.executable).with_name("ray"))
    cmd = [
        ray_cli, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={gcs}",
        f"--node-manager-port={node}", f"--object-manager-port={objects}",
        f"--dashboard-agent-listen-port={agent}", f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={env_agent}", f"--metrics-export-port={metrics}",
        "--include-dashboard=false",
        "--dashboard-host=127.0.0.1", "--disable-usage-stats", "--log-style=record",
        f"--temp-dir={temp_dir}",
    ]
    if num_cpus is not None:
        cmd.append(f"--num-cpus={num_cpus}")
    return cmd


@dataclass(frozen=True, kw_only=True)
class LocalHead:
    """A local head this process started: its address, its temp dir (sockets, session logs;
    deleted when it stops) and the reaper it runs under."""

    address: str
    temp_dir: Path
    reaper: subprocess.Popen[bytes]


def start_local_head(num_cpus: int | None = None) -> str:
    """Start a private head under a reaper; its address once it is up. It stops (and its temp
    dir goes) at :func:`stop_local_heads`, when this process exits, or when it is killed."""
    ports = _free_ports(7)
    temp_dir = Path(tempfile.mkdtemp(prefix="nasray-", dir="/tmp" if Path("/tmp").is_dir()
                                     else None))  # short: Ray's socket paths must fit 107 bytes
    log_path = temp_dir / "head.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nas.distributed.reaper", "--remove", str(temp_dir),
             *head_command(num_cpus, ports, temp_dir)],
            stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    head = LocalHead(address=f"127.0.0.1:{ports[0]}", temp_dir=temp_dir, reaper=proc)
    _HEADS.append(head)
    atexit.unregister(_stop_at_exit)
    atexit.register(_stop_at_exit)  # registered last, so it runs before Ray's own shutdown
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if _READY in text:
            return head.address
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    stop_local_heads()
    raise ConfigError(f"the local Ray did not start (waited up to {START_TIMEOUT_S:g} s; "
                      f"its log ends: {tail[0]})")


def local_heads() -> list[LocalHead]:
    """The heads this process started that still run (oldest first)."""
    return list(_HEADS)


def stop_local_heads(timeout_s: float = 30.0) -> None:
    """End the heads this process started (closing the reapers' stdin), wait for them and
    delete their temp dirs. Call it after ``ray.shutdown()`` to end a local Ray before this
    process exits (it runs at exit anyway)."""
    while _HEADS:
        head = _HEADS.pop()
        if head.reaper.stdin is not None:
            head.reaper.stdin.close()
        try:
            head.reaper.wait(timeout_s)
        except subprocess.TimeoutExpired:
            head.reaper.kill()
            head.reaper.wait(timeout_s)
        shutil.rmtree(head.temp_dir, ignore_errors=True)


def _stop_at_exit() -> None:
    """At exit: disconnect from Ray first (a driver whose raylet dies is ended abruptly), then
    stop the heads."""
    ray = sys.modules.get("ray")
    if _HEADS and ray is not None and ray.is_initialized():
        ray.shutdown()
    stop_local_heads()

"""A local Ray head that dies with its driver: ``ray start --head --block`` under a reaper.

The head runs as ``python -m nas.distributed.reaper ray start --head --block ...`` in its own
session (a Ctrl-C for the driver does not tear it down mid-shutdown). The driver keeps the
write end of the reaper's stdin and never writes to it; when the driver exits or is killed
(any signal, SIGKILL included) the kernel closes it and the reaper ends every process of that
Ray: GCS, raylet, dashboard and runtime-env agents, workers (see :mod:`nas.distributed.reaper`).
Everything binds to 127.0.0.1 on ports chosen free, so it cannot collide with another Ray.

Example:
    >>> address = start_local_head(num_cpus=2)
    >>> ray.init(address=address)
"""

from __future__ import annotations

import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from nas.errors import ConfigError

START_TIMEOUT_S = 120.0
_READY = "Ray runtime started"
# the reapers this process started (their stdin pipes must stay open while it runs)
_HEADS: list[subprocess.Popen[bytes]] = []


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


def start_local_head(num_cpus: int | None = None) -> str:
    """Start a private head under a reaper; its address once it is up."""
    ports = _free_ports(7)
    temp_dir = Path(tempfile.mkdtemp(prefix="nasray-", dir="/tmp" if Path("/tmp").is_dir()
                                     else None))  # short: Ray's socket paths must fit 107 bytes
    log_path = temp_dir / "head.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nas.distributed.reaper",
             *head_command(num_cpus, ports, temp_dir)],
            stdin=subprocess.PIPE, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _HEADS.append(proc)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        if _READY in text:
            return f"127.0.0.1:{ports[0]}"
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    stop_local_heads()
    tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
    raise ConfigError(f"the local Ray did not start (waited up to {START_TIMEOUT_S:g} s; "
                      f"log {log_path}: {tail[0]})")


def stop_local_heads(timeout_s: float = 30.0) -> None:
    """End the heads this process started (closing the reapers' stdin) and wait for them."""
    while _HEADS:
        proc = _HEADS.pop()
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()

"""Starting (or joining) Ray safely: loopback only, no dashboard, no usage stats, and a local
Ray that never outlives its driver (:mod:`nas.distributed.head`)."""

from __future__ import annotations

import logging
import os
from typing import Any

from nas.errors import ConfigError

log = logging.getLogger(__name__)

# Ray binds to the machine's network address unless told otherwise; keep a local Ray private.
_LOCAL_ENV = {
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
}


def ensure_ray(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Initialise Ray once: join ``address`` if given, else start a local loopback instance.

    A local Ray's workers run at this process's priority (``os.nice``), as the sequential
    mode does: Ray's own default (nice 15) lets any other job on the machine starve them.
    Set ``RAY_worker_niceness`` to choose otherwise. The local Ray runs under a reaper that
    ends all of it when this process dies, whatever the signal. Returns the ``ray`` module.
    Calling it again when Ray is up does nothing.
    """
    for key, value in _LOCAL_ENV.items():
        os.environ[key] = value
    if not address:
        os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    import ray

    if ray.is_initialized():
        return ray
    if address:
        check_reachable(address)
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        from nas.distributed.head import start_local_head

        log.info("starting a local Ray (loopback, %s CPUs)", num_cpus or "all")
        head = start_local_head(num_cpus)
        ray.init(address=head, log_to_driver=False, configure_logging=False)
    return ray


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """Fail in ``timeout_s`` with one line when nothing answers at ``HOST:PORT`` (Ray itself
    would retry for minutes). ``auto`` and ``ray://`` addresses are left to Ray."""
    import socket

    if address == "auto" or "://" in address:
        return
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"address {address!r}: expected HOST:PORT (e.g. 10.0.0.1:6379)")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            pass
    except OSError as exc:
        raise ConfigError(f"address {address!r}: no Ray cluster answers there "
                          f"({exc.strerror or exc} within {timeout_s:g} s)") from None


def set_worker_threads(n: int = 1) -> None:
    """Set torch's thread count inside a Ray task (reused workers keep the last value)."""
    import torch

    torch.set_num_threads(max(1, n))

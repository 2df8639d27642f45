"""Starting (or joining) Ray safely: loopback only, no dashboard, no usage stats."""

from __future__ import annotations

import logging
import os
from typing import Any

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
    Set ``RAY_worker_niceness`` to choose otherwise. Returns the ``ray`` module. Calling it
    again when Ray is up does nothing.
    """
    for key, value in _LOCAL_ENV.items():
        os.environ[key] = value
    if not address:
        os.environ.setdefault("RAY_worker_niceness", str(os.nice(0)))
    import ray

    if ray.is_initialized():
        return ray
    if address:
        log.info("joining Ray cluster at %s", address)
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    else:
        log.info("starting a local Ray (loopback, %s CPUs)", num_cpus or "all")
        ray.init(
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            _node_ip_address="127.0.0.1",
            configure_logging=False,
        )
    return ray


def set_worker_threads(n: int = 1) -> None:
    """Set torch's thread count inside a Ray task (reused workers keep the last value)."""
    import torch

    torch.set_num_threads(max(1, n))

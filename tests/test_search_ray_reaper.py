"""A killed driver leaves no Ray behind: the reaper ends every process of its local Ray."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from test_search_resume_cli import make_tiny_run

from nas.distributed.reaper import descendants


def _start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (tells a live process from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat[stat.rfind(")") + 2 :].split()[19]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _survivors(procs: dict[int, str | None], timeout_s: float) -> list[int]:
    """The recorded processes still alive after up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        alive = [p for p, t in procs.items() if t is not None and _start_time(p) == t]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def _wait_for(predicate, timeout_s: float, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert proc.poll() is None, f"the driver ended early: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, "timed out waiting for the driver"
        time.sleep(0.2)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper needs Linux")
def test_reaper_ends_detached_descendants_when_the_driver_is_killed(tmp_path: Path) -> None:
    """No Ray: a driver starts the reaper over a shell that detaches a child (``setsid``)."""
    driver_code = textwrap.dedent(
        """
        import subprocess, sys, time
        cmd = ["sh", "-c", "sleep 300 & setsid sleep 300 & wait"]
        subprocess.Popen([sys.executable, "-m", "nas.distributed.reaper", *cmd],
                         stdin=subprocess.PIPE, start_new_session=True)
        time.sleep(300)
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_code], stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_for(lambda: sum("sleep 300" in _cmdline(p) for p in descendants(driver.pid)) >= 2,
                  60, driver)
        procs = {p: _start_time(p) for p in descendants(driver.pid)}
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        assert _survivors(procs, 20) == []
    finally:
        driver.kill()


@pytest.mark.slow
@pytest.mark.ray
def test_sigkilled_ray_search_leaves_no_ray_process(tmp_path: Path) -> None:
    run = make_tiny_run(tmp_path)
    env = {**os.environ, "NAS_PROFILE_PATH": str(tmp_path / "profiles"), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "nas.cli", "search", "--run", str(run), "--profiles",
           "tiny_fast", "--searcher", "evolution", "--budget", "5000", "--batch-size", "4",
           "--images", "32", "--bn-batches", "1", "--export-top", "-1"]
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True)
    try:
        trials = run / "search" / "tiny_fast" / "trials.csv"
        _wait_for(lambda: trials.exists() and trials.stat().st_size > 0, 240, driver)
        tree = descendants(driver.pid)
        raylet = [p for p in tree if "raylet/raylet" in _cmdline(p)]
        assert raylet and any(_cmdline(p).startswith("ray::") for p in tree)
        session = next(a for a in _cmdline(raylet[0]).split() if "session_" in a)
        session = session[session.index("/") :].split("/sockets")[0].split("/logs")[0]
        procs = {p: _start_time(p) for p in tree}
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        assert _survivors(procs, 30) == []
        same_session = [p for p in map(int, filter(str.isdigit, os.listdir("/proc")))
                        if session in _cmdline(p)]
        assert same_session == [], f"processes of {session} survive"
        temp_dir = Path(session.split("/session_")[0])
        assert temp_dir.name.startswith("nasray-")
        deadline = time.monotonic() + 20
        while temp_dir.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not temp_dir.exists(), f"{temp_dir} is left behind"
    finally:
        driver.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper needs Linux")
def test_reaper_deletes_its_folder_when_the_driver_is_killed(tmp_path: Path) -> None:
    """No Ray: ``--remove DIR`` deletes DIR once the descendants are ended."""
    folder = tmp_path / "nasray-x"
    (folder / "session").mkdir(parents=True)
    driver_code = textwrap.dedent(
        f"""
        import subprocess, sys, time
        subprocess.Popen([sys.executable, "-m", "nas.distributed.reaper", "--remove",
                          {str(folder)!r}, "sleep", "300"], stdin=subprocess.PIPE)
        time.sleep(300)
        """
    )
    driver = subprocess.Popen([sys.executable, "-c", driver_code], stderr=subprocess.PIPE,
                              text=True)
    try:
        _wait_for(lambda: any("sleep 300" in _cmdline(p) for p in descendants(driver.pid)),
                  60, driver)
        assert folder.is_dir()
        driver.send_signal(signal.SIGKILL)
        driver.wait(10)
        deadline = time.monotonic() + 20
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not folder.exists()
    finally:
        driver.kill()


@pytest.mark.slow
@pytest.mark.ray
def test_stopping_a_local_head_deletes_its_temp_dir(tmp_path: Path) -> None:
    """After ``ray.shutdown()`` + ``stop_local_heads()``, and when the driver exits, the
    head's ``/tmp/nasray-*`` folder is gone and nothing of that Ray runs."""
    driver_code = textwrap.dedent(
        """
        from nas.distributed.head import local_heads, stop_local_heads
        from nas.distributed.local import ensure_ray
        ray = ensure_ray(num_cpus=1)
        first = local_heads()[0].temp_dir
        assert first.is_dir()
        ray.shutdown()
        stop_local_heads()
        print(first, first.exists(), local_heads(), flush=True)
        ray = ensure_ray(num_cpus=1)
        assert ray.get(ray.put(7)) == 7
        print(local_heads()[0].temp_dir, flush=True)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-c", driver_code], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    first_line, second = done.stdout.split("\n")[:2]
    first, exists, heads = first_line.split(" ", 2)
    assert (exists, heads) == ("False", "[]") and first.startswith("/tmp/nasray-")
    assert not Path(first).exists() and not Path(second).exists()
    left = [p for p in map(int, filter(str.isdigit, os.listdir("/proc")))
            if second in _cmdline(p) or first in _cmdline(p)]
    assert left == [], f"processes of {second} survive"

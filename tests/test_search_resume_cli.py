"""``nas search`` SIGKILLed mid-search and resumed logs the same trials, row for row, as an
uninterrupted run (a real driver process, sequential mode)."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from test_search_cli import _tiny_profile

import nas
from nas.checkpoint import save_checkpoint
from nas.rundir import RunDir, atomic_write_json
from nas.tasks import DataSpec

BUDGET, BATCH = 40, 4
COMPARED = ("key", "arch", "iteration", "feasible", "accuracy", "latency_ms")


def make_tiny_run(folder: Path) -> Path:
    """A tiny run (untrained supernet, seeded) under ``folder``; profiles in ``folder/profiles``."""
    space = nas.create_space("tiny")
    run = RunDir.create(folder / "run", space)
    run.update_info(task="classification", data=DataSpec(data="digits", limit=160).to_dict())
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    atomic_write_json(run.path / "supernet" / "config.json", {"num_classes": 10, "space": "tiny"})
    save_checkpoint(run.path / "supernet" / "checkpoint.pt",
                    {"step": 0, "epoch": 0, "batch": 0, "model": supernet.state_dict()},
                    space=space)
    (folder / "profiles").mkdir()
    _tiny_profile(folder / "profiles", "tiny_fast", 0.5)
    return run.path


def _command(run: Path, searcher: str, *extra: str) -> list[str]:
    return [sys.executable, "-m", "nas.cli", "search", "--run", str(run), "--profiles",
            "tiny_fast", "--searcher", searcher, "--budget", str(BUDGET), "--batch-size",
            str(BATCH), "--seed", "1", "--images", "32", "--bn-batches", "1", "--sequential",
            "--export-top", "-1", *extra]


def _env(folder: Path) -> dict[str, str]:
    return {**os.environ, "NAS_PROFILE_PATH": str(folder / "profiles"), "OMP_NUM_THREADS": "1"}


def _rows(run: Path) -> list[tuple[str, ...]]:
    path = run / "search" / "tiny_fast" / "trials.csv"
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [tuple(r.get(c) or "" for c in COMPARED) for r in csv.DictReader(handle)]


def _kill_after(cmd: list[str], env: dict[str, str], run: Path, rows: int) -> int:
    """Start ``cmd``, SIGKILL it once ``rows`` trials are logged; the rows logged then."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    try:
        while len(_rows(run)) < rows and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        assert proc.poll() is None, "the search ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait(30)
    return len(_rows(run))


@pytest.mark.slow
@pytest.mark.parametrize("searcher", ["evolution", "nsga2", "local", "tpe"])
def test_sigkilled_cli_search_resumes_row_for_row(tmp_path: Path, searcher: str) -> None:
    ref_dir, cut_dir = tmp_path / "ref", tmp_path / "cut"
    ref_dir.mkdir()
    cut_dir.mkdir()
    ref, cut = make_tiny_run(ref_dir), make_tiny_run(cut_dir)
    done = subprocess.run(_command(ref, searcher), env=_env(ref_dir), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = _rows(ref)
    assert len(expected) == BUDGET
    logged = _kill_after(_command(cut, searcher), _env(cut_dir), cut, rows=2 * BATCH)
    assert 0 < logged < BUDGET
    again = subprocess.run(_command(cut, searcher, "--resume"), env=_env(cut_dir),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert _rows(cut) == expected

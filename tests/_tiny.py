"""Helpers for tests that build the ``tiny`` supernet."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import nas


def make_tiny(num_classes: int = 10) -> Any:
    """A freshly initialised ``tiny`` supernet (seed torch first for identical weights)."""
    return nas.create_supernet("tiny", num_classes=num_classes)


def assert_run_reopens_in_a_fresh_process(run: Path, space: nas.SearchSpace, task: str) -> None:
    """A run directory created for ``space`` reopens with the same space in a new interpreter
    (the space is rebuilt from the recipe it records, not from this process's registry)."""
    from nas.rundir import RunDir

    RunDir.create(run, space, task=task)
    code = ("import sys; from nas.rundir import RunDir; "
            "r = RunDir.open(sys.argv[1]); print(r.space.name, r.space.fingerprint())")
    out = subprocess.run([sys.executable, "-c", code, str(run)], check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [space.name, space.fingerprint()]

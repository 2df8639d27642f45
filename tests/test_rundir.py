"""Run directories: atomic writes and the space fingerprint check."""

from __future__ import annotations

from pathlib import Path

import pytest

import nas
from nas.rundir import RunDir, atomic_write, atomic_write_json, read_json


def test_create_open_and_refuse_other_space(tmp_path: Path) -> None:
    run = RunDir.create(tmp_path / "r", nas.create_space("tiny"), seed=3)
    assert run.info()["seed"] == 3
    assert RunDir.space_name(run.path) == "tiny"
    RunDir.open(run.path, nas.create_space("tiny"))
    with pytest.raises(ValueError, match="made for space 'tiny'"):
        RunDir.open(run.path, nas.create_space("nb201"))
    run.update_info(stage="trained")
    assert run.info() == {"space": "tiny", "seed": 3, "stage": "trained"}


def test_atomic_write_keeps_old_file_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})

    def broken(handle: object) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        atomic_write(target, broken)
    assert read_json(target) == {"v": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]  # no temp file left


def test_read_json_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"missing\.json"):
        read_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        read_json(bad)

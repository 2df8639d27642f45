"""Checkpoints: atomic round trip, space fingerprint check, clear errors on corruption."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import nas
from nas.checkpoint import (
    CheckpointError,
    load_checkpoint,
    rng_state,
    save_checkpoint,
    set_rng_state,
)


def _state() -> dict:
    model = torch.nn.Linear(3, 2)
    return {
        "step": 7,
        "epoch": 1,
        "batch": 2,
        "model": model.state_dict(),
        "rng": rng_state(),
        "note": "plain values only",
        "sizes": [1, 2, 3],
    }


def test_round_trip_keeps_tensors_and_values(tmp_path: Path) -> None:
    space = nas.create_space("tiny")
    state = _state()
    path = save_checkpoint(tmp_path / "supernet" / "checkpoint.pt", state, space=space)
    loaded = load_checkpoint(path, space=space)
    assert loaded["step"] == 7 and loaded["sizes"] == [1, 2, 3]
    assert loaded["fingerprint"] == space.fingerprint() and loaded["space"] == "tiny"
    assert all(torch.equal(loaded["model"][k], v) for k, v in state["model"].items())
    assert not list(path.parent.glob(".*.tmp"))  # no temporary left behind


def test_rng_state_restores_the_torch_stream() -> None:
    saved = rng_state()
    a = torch.rand(4)
    set_rng_state(saved)
    assert torch.equal(torch.rand(4), a)


def test_space_mismatch_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint(tmp_path / "c.pt", _state(), space=nas.create_space("tiny"))
    with pytest.raises(CheckpointError, match=r"for space 'tiny'.*not 'nb201'"):
        load_checkpoint(path, space=nas.create_space("nb201"))


def test_truncated_or_foreign_files_give_clear_errors(tmp_path: Path) -> None:
    space = nas.create_space("tiny")
    path = save_checkpoint(tmp_path / "c.pt", _state(), space=space)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path, space=space)
    path.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path, space=space)
    torch.save({"weights": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not a training checkpoint"):
        load_checkpoint(path, space=space)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "none.pt", space=space)


def test_pickled_objects_are_refused(tmp_path: Path) -> None:
    space = nas.create_space("tiny")
    path = tmp_path / "c.pt"
    torch.save(
        {
            **_state(),
            "format": 1,
            "space": "tiny",
            "fingerprint": space.fingerprint(),
            "evil": Path("/"),
        },
        path,
    )
    with pytest.raises(CheckpointError):
        load_checkpoint(path, space=space)


def test_save_requires_the_position(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "c.pt", {"model": {}}, space=nas.create_space("tiny"))

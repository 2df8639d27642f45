"""Data-parallel supernet training on Ray Train: 2 workers on ``tiny``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from _tiny import make_tiny

import nas
from nas.checkpoint import load_checkpoint
from nas.data import load_data, split
from nas.train import Progress, TrainConfig

pytestmark = pytest.mark.ray


def test_two_workers_train_in_sync_and_write_the_run(ray_session: Any, tmp_path: Path) -> None:
    from nas.distributed.train import train_supernet_distributed

    train, val = split(load_data("digits", limit=200, seed=0), 0.2, seed=0)
    torch.manual_seed(0)
    net = make_tiny()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    seen: list[Progress] = []
    config = TrainConfig(epochs=1, batch_size=16, num_random=1, eval_bn_batches=1, seed=2)
    result = train_supernet_distributed(
        net, train, val, config, tmp_path / "run", workers=2, progress=seen.append
    )
    # 160 images, 2 workers x 16 per step -> 5 steps; the workers checked they stayed in sync
    assert result.steps == 5 and result.epochs == 1
    assert [p.step for p in seen] == [1, 2, 3, 4, 5]
    saved = json.loads((tmp_path / "run/supernet/config.json").read_text())
    assert saved["world_size"] == 2
    state = load_checkpoint(tmp_path / "run/supernet/checkpoint.pt", space=nas.create_space("tiny"))
    assert state["world_size"] == 2
    trained = net.state_dict()
    assert all(torch.equal(trained[k], state["model"][k]) for k in trained)
    assert any(not torch.equal(trained[k], start[k]) for k in start if k.endswith("weight"))
    assert set(result.final) == {"smallest", "middle", "largest"}
    with pytest.raises(ValueError, match="already holds"):
        train_supernet_distributed(net, train, val, config, tmp_path / "run", workers=2)

"""Fine-tuning an imported model once: sandwich steps taught by the frozen original model
(``TrainConfig(teacher="initial")``), resumable bit for bit like every run."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the 'hf' extra is not installed")

from nas.checkpoint import load_checkpoint  # noqa: E402
from nas.errors import ConfigError  # noqa: E402
from nas.flow import train  # noqa: E402
from nas.tasks import DataSpec  # noqa: E402
from nas.train import Progress, TrainConfig  # noqa: E402
from search_spaces.hf_space import from_hf  # noqa: E402

DATA = DataSpec(data="pydoc", limit=72, seq_len=32, seed=0)
CONFIG = TrainConfig(epochs=2, batch_size=16, lr=0.01, optimizer="adamw", teacher="initial",
                     eval_bn_batches=0, eval_max_batches=1, checkpoint_every=1)


@pytest.fixture(scope="module")
def imported() -> Any:
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_layer=2, n_embd=32, n_head=2, n_positions=64, vocab_size=256)).eval()
    return from_hf(model, name="hf_finetune_probe")


def _train(imported: Any, path: Path, **kwargs: Any) -> Any:
    return train(path, imported.space, data=DATA, config=CONFIG,
                 initial_state=imported.state_dict(), supernet_options={"num_classes": 256},
                 **kwargs)


def _checkpoint(imported: Any, path: Path) -> dict[str, Any]:
    return load_checkpoint(path / "supernet" / "checkpoint.pt", space=imported.space)


def test_the_original_model_teaches_and_stays_frozen(imported: Any, tmp_path: Path) -> None:
    result = _train(imported, tmp_path / "a")
    state = _checkpoint(imported, tmp_path / "a")
    initial = imported.state_dict()
    assert result.steps > 2
    assert all(torch.equal(state["teacher"][k], initial[k]) for k in initial)
    assert any(not torch.equal(state["model"][k], initial[k]) for k in initial)


def test_interrupted_fine_tune_resumes_bit_for_bit(imported: Any, tmp_path: Path) -> None:
    _train(imported, tmp_path / "straight")

    def stop_at(step: int) -> Callable[[Progress], None]:
        def callback(p: Progress) -> None:
            if p.step == step:
                os.kill(os.getpid(), signal.SIGINT)

        return callback

    with pytest.raises(KeyboardInterrupt):
        _train(imported, tmp_path / "b", progress=stop_at(3))
    _train(imported, tmp_path / "b", resume=True)
    a, b = _checkpoint(imported, tmp_path / "straight"), _checkpoint(imported, tmp_path / "b")
    assert a["step"] == b["step"]
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(a["teacher"][k], b["teacher"][k]) for k in a["teacher"])


def test_teacher_option_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"teacher must be one of \['inplace', 'initial'\]"):
        TrainConfig(teacher="largest")


def test_every_subnet_distils_from_the_frozen_original(imported: Any, tmp_path: Path) -> None:
    import copy

    import numpy as np

    from nas.rundir import RunDir
    from nas.tasks import create_task
    from nas.train_loop import TrainLoop

    net = copy.deepcopy(imported)
    task = create_task("language_modelling")
    train_data, val_data = task.load(DATA)
    loop = TrainLoop(net, train_data, val_data, CONFIG, RunDir.create(tmp_path, net.space),
                     rank=0, world_size=1, reduce_grads=None, progress=None, task=task)
    loop._start_phase(0)
    with torch.no_grad():  # the student drifts from the original: their logits differ
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    seen: list[torch.Tensor] = []
    original = task.distillation_loss

    def spy(logits: torch.Tensor, soft: torch.Tensor, **kw: Any) -> torch.Tensor:
        seen.append(soft)
        return original(logits, soft, **kw)

    task.distillation_loss = spy  # type: ignore[method-assign]
    x, y = train_data.batch(np.arange(16))
    loop.train_step(x, y, loop.phases[0])
    imported.set_active(imported.space.largest())
    with torch.no_grad():
        expected = imported(x)
    assert len(seen) == 2 + CONFIG.num_random  # the largest subnet is taught too
    assert all(torch.allclose(s, expected, atol=1e-6) for s in seen)

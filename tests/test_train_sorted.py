"""The SortedNet ``sorted`` schedule: nested sub-models per step, exact resume, transformers."""

from __future__ import annotations

import copy
import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from _grads import assert_grads_are_the_hand_sum
from _tiny import make_tiny

import nas
from nas.checkpoint import load_checkpoint
from nas.data import load_data, split
from nas.errors import ConfigError
from nas.nested import is_nested, nested_archs
from nas.rundir import RunDir
from nas.tasks import DataSpec, create_task
from nas.train import Progress, TrainConfig, train_supernet
from nas.train_loop import TrainLoop


@pytest.fixture(scope="module")
def digits() -> tuple:
    return split(load_data("digits", limit=160, seed=0), 0.2, seed=0)


def _loop(net: object, data: tuple, config: TrainConfig, path: Path) -> TrainLoop:
    train, val = data
    run = RunDir.create(path, net.space)  # type: ignore[attr-defined]
    return TrainLoop(
        net, train, val, config, run, rank=0, world_size=1, reduce_grads=None, progress=None,
        task=create_task("classification"),
    )


@pytest.mark.parametrize("space_name", ["tiny", "vit_mini", "gpt_tiny"])
def test_nested_archs_are_sorted_in_every_dimension_with_the_largest_first(
    space_name: str,
) -> None:
    if space_name not in nas.list_spaces():
        pytest.skip(f"no {space_name} space registered")
    space = nas.create_space(space_name)
    rng = np.random.default_rng(0)
    smaller_seen: set[str] = set()
    for _ in range(50):
        chain = nested_archs(space, 4, rng)
        assert len(chain) == 4 and chain[0] == space.largest() and is_nested(space, chain)
        rows = space.indices(chain, fill_inactive=False)
        assert np.all(rows[:-1] >= rows[1:])  # each choice no larger than the one before
        smaller_seen.update(a.key for a in chain[1:])
    assert len(smaller_seen) > 20  # random, not a fixed ladder
    first, again = (nested_archs(space, 4, np.random.default_rng(0)) for _ in range(2))
    assert [a.key for a in first] == [a.key for a in again]


def test_is_nested_detects_an_unsorted_pair() -> None:
    space = nas.create_space("tiny")
    assert not is_nested(space, [space.smallest(), space.largest()])
    assert is_nested(space, [space.largest(), space.smallest()])
    with pytest.raises(ConfigError, match="num_nested must be an int >= 1, got 0"):
        nested_archs(space, 0, np.random.default_rng(0))


def test_sorted_config_validation_and_round_trip() -> None:
    config = TrainConfig(schedule="sorted", num_nested=3, kd_ratio=0.0)
    assert [p.name for p in config.resolved("classification").resolved_phases()] == ["sorted"]
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    bads: tuple[Any, ...] = (1, 0, 2.5, True)
    for bad in bads:
        with pytest.raises(ConfigError, match=rf"num_nested must be an int >= 2 .*got {bad!r}"):
            TrainConfig(schedule="sorted", num_nested=bad)
    with pytest.raises(
        ConfigError, match=r"schedule must be one of \['sandwich', 'progressive', 'sorted'\]"
    ):
        TrainConfig(schedule="sortednet")
    with pytest.raises(ConfigError, match="phases are only used by schedule='progressive'"):
        TrainConfig(schedule="sorted", phases=())


def test_step_draws_nested_subnets_per_seed_and_step(digits: tuple, tmp_path: Path) -> None:
    config = TrainConfig(schedule="sorted", num_nested=5, batch_size=16, seed=4)
    trainer = _loop(make_tiny(), digits, config, tmp_path / "run")
    phase = trainer.phases[0]
    draws = [trainer._step_archs(phase, np.random.default_rng([4, 7, s])) for s in range(6)]
    for archs in draws:
        assert len(archs) == 5 and archs[0] == trainer.space.largest()
        assert is_nested(trainer.space, archs)
    again = trainer._step_archs(phase, np.random.default_rng([4, 7, 3]))
    assert [a.key for a in again] == [a.key for a in draws[3]]
    assert len({tuple(a.key for a in d) for d in draws}) > 1


def test_sorted_step_sums_losses_with_in_place_distillation(
    digits: tuple, tmp_path: Path
) -> None:
    """One step == largest (CE) + each smaller nested one (CE + KD to the largest), summed."""
    torch.manual_seed(0)
    net = make_tiny()
    twin = copy.deepcopy(net)
    config = TrainConfig(schedule="sorted", num_nested=3, batch_size=16, seed=2, kd_ratio=0.5)
    trainer = _loop(net, digits, config, tmp_path / "run")
    trainer._start_phase(0)
    x, y = digits[0].batch(np.arange(16))
    archs = trainer._step_archs(trainer.phases[0], np.random.default_rng([2, 7, 0]))
    torch.manual_seed(1)
    trainer.train_step(x, y, trainer.phases[0])

    torch.manual_seed(1)
    assert_grads_are_the_hand_sum(net, twin, archs, x, y, kd_ratio=0.5)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(path / "supernet" / "checkpoint.pt", space=nas.create_space("tiny"))
    return state["model"]  # type: ignore[no-any-return]


def _stop_at(step: int) -> Callable[[Progress], None]:
    def callback(p: Progress) -> None:
        if p.step == step:
            os.kill(os.getpid(), signal.SIGINT)

    return callback


def test_sorted_resume_after_a_stop_is_bitwise_identical(digits: tuple, tmp_path: Path) -> None:
    train, val = digits  # 128 training images: 8 steps per epoch at batch 16
    config = TrainConfig(
        schedule="sorted", num_nested=3, epochs=2, batch_size=16, eval_bn_batches=1,
        eval_max_batches=1, checkpoint_every=100, seed=6,
    )

    def fresh() -> object:
        torch.manual_seed(0)
        return make_tiny()

    straight = train_supernet(fresh(), train, val, config, tmp_path / "a")
    with pytest.raises(KeyboardInterrupt):  # mid-way through the first epoch
        train_supernet(fresh(), train, val, config, tmp_path / "b", progress=_stop_at(5))
    state = load_checkpoint(tmp_path / "b/supernet/checkpoint.pt", space=nas.create_space("tiny"))
    assert state["step"] == 5 and state["batch"] == 5
    resumed = train_supernet(fresh(), train, val, config, tmp_path / "b", resume=True)
    assert resumed.steps == straight.steps == 16 and resumed.history == straight.history
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert [row["phase"] for row in straight.history] == ["sorted", "sorted"]


def test_cli_trains_with_the_sorted_schedule(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.cli import main

    argv = ["train", "--space", "tiny", "--data", "digits", "--limit", "120", "--epochs", "1",
            "--batch-size", "32", "--schedule", "sorted", "--runs-dir", str(tmp_path)]
    assert main([*argv, "--num-nested", "3", "--kd-ratio", "0", "--run", "r", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3
    saved = json.loads((tmp_path / "r/supernet/config.json").read_text())["config"]
    assert saved["schedule"] == "sorted" and saved["num_nested"] == 3 and saved["kd_ratio"] == 0
    assert main([*argv, "--num-nested", "1", "--run", "bad"]) == 2
    err = capsys.readouterr().err
    assert "num_nested must be an int >= 2" in err and "got 1" in err


@pytest.mark.skipif("gpt_tiny" not in nas.list_spaces(), reason="no gpt_tiny space")
def test_gpt_tiny_trains_with_sorted_and_loss_goes_down(tmp_path: Path) -> None:
    torch.manual_seed(0)
    task = create_task("language_modelling")
    train, val = task.load(DataSpec(data="pydoc", seq_len=32, limit=320, val_fraction=0.2))
    net = nas.create_supernet("gpt_tiny", num_classes=task.num_outputs(train))
    config = TrainConfig(
        schedule="sorted", num_nested=3, epochs=3, batch_size=16, lr=3e-3, optimizer="adamw",
        label_smoothing=0.0, warmup_epochs=0.2, eval_bn_batches=0, eval_max_batches=2,
        checkpoint_every=1000,
    )
    result = train_supernet(net, train, val, config, tmp_path / "gpt", task=task)
    losses = [row["loss"] for row in result.history]
    assert losses[-1] < losses[0] - 0.3, losses
    final = result.final
    for name in ("smallest", "middle", "largest"):  # far better than uniform over 256 bytes
        assert final[name]["perplexity"] < 64, (name, final[name])


@pytest.mark.parametrize("schedule", ["sandwich", "sorted"])
def test_largest_weight_scales_only_the_largest_subnets_loss(
    schedule: str, digits: tuple, tmp_path: Path
) -> None:
    """One step == largest_weight x largest CE + each other (CE + KD to the largest), summed."""
    from nas.data import resize
    from nas.evaluation import arch_resolution
    from nas.tasks.classification import soft_cross_entropy

    torch.manual_seed(0)
    net = make_tiny()
    twin = copy.deepcopy(net)
    config = TrainConfig(schedule=schedule, num_nested=3, num_random=1, batch_size=16, seed=2,
                         kd_ratio=0.5, largest_weight=3.0)
    trainer = _loop(net, digits, config, tmp_path / "run")
    trainer._start_phase(0)
    x, y = digits[0].batch(np.arange(16))
    archs = trainer._step_archs(trainer.phases[0], np.random.default_rng([2, 7, 0]))
    assert archs[0] == net.space.largest() and len(archs) == 3
    torch.manual_seed(1)
    trainer.train_step(x, y, trainer.phases[0])

    torch.manual_seed(1)
    teacher = None
    for arch in archs:
        twin.set_active(arch)
        logits = twin(resize(x, arch_resolution(twin.space, arch)))
        loss = torch.nn.functional.cross_entropy(logits, y, label_smoothing=0.1)
        if teacher is None:
            loss, teacher = 3.0 * loss, logits.detach()
        else:
            loss = loss + 0.5 * soft_cross_entropy(logits, teacher, 1.0)
        loss.backward()
    for (name, p), q in zip(net.named_parameters(), twin.parameters(), strict=True):
        assert (p.grad is None) == (q.grad is None), name
        if p.grad is not None and q.grad is not None:
            assert torch.allclose(p.grad, q.grad, atol=1e-6), name


def test_largest_weight_validation_round_trip_and_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TrainConfig(schedule="sorted", largest_weight=4.0)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.differences(TrainConfig(schedule="sorted")) == ["largest_weight"]
    for bad in (0.0, -1.0):
        with pytest.raises(ConfigError, match=rf"largest_weight must be > 0, got {bad!r}"):
            TrainConfig(largest_weight=bad)
    with pytest.raises(ConfigError, match="largest_weight is only used by schedule='sandwich'"):
        TrainConfig(schedule="progressive", epochs=4, largest_weight=2.0)
    from nas.cli import main

    argv = ["train", "--space", "tiny", "--data", "digits", "--limit", "120", "--epochs", "1",
            "--batch-size", "32", "--largest-weight", "4", "--label-smoothing", "0.05",
            "--runs-dir", str(tmp_path)]
    assert main([*argv, "--run", "r", "--json"]) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "r/supernet/config.json").read_text())["config"]
    assert saved["largest_weight"] == 4.0 and saved["label_smoothing"] == 0.05


def test_balanced_probabilities_fill_the_interior_values_up_to_the_ends() -> None:
    from nas.nested import balanced_probabilities
    from nas.space import Choice, SearchSpace

    space = SearchSpace("s", [Choice("one", (1,)), Choice("two", (1, 2)),
                              Choice("three", (1, 2, 3)), Choice("five", (1, 2, 3, 4, 5))])
    one, two, three, five = balanced_probabilities(space, 2)
    assert one.tolist() == [1.0] and two.tolist() == [0.5, 0.5]
    assert np.allclose(three, [1 / 6, 2 / 3, 1 / 6])  # 4 draws: each value 4/3 per step
    assert np.allclose(five, [0, 1 / 3, 1 / 3, 1 / 3, 0])  # 4 draws < 5 values: interior only
    assert np.allclose(balanced_probabilities(space, 1)[2], [0, 1, 0])
    assert np.allclose(balanced_probabilities(space, 7)[2], [2 / 7, 3 / 7, 2 / 7])  # 3 each


@pytest.mark.parametrize("sampling", ["uniform", "balanced"])
def test_balanced_sampling_trains_each_value_as_often_as_the_ends(
    sampling: str, digits: tuple, tmp_path: Path
) -> None:
    """Counting largest, random and smallest: balanced trains resolution 24 (the interior of
    16/24/32) 4/3 times per step like 16 and 32; uniform only the random draws' 2/3."""
    net = make_tiny()
    config = TrainConfig(num_random=2, sampling=sampling)
    trainer = _loop(net, digits, config, tmp_path / "run")
    space = net.space
    col = [c.name for c in space.choices].index("resolution")
    counts = np.zeros((len(space.choices), 3))
    steps = 1500
    for step in range(steps):
        archs = trainer._step_archs(trainer.phases[0], np.random.default_rng([0, 7, step]))
        assert archs[0] == space.largest() and archs[-1] == space.smallest() and len(archs) == 4
        for row in space.indices(archs, fill_inactive=False):
            counts[np.arange(len(row)), row] += 1
    per_step = counts / steps
    interior = 4 / 3 if sampling == "balanced" else 2 / 3
    assert np.allclose(per_step[col], [2 - interior / 2, interior, 2 - interior / 2], atol=0.05)
    two = [i for i, c in enumerate(space.choices) if len(c.values) == 2]
    assert np.allclose(per_step[two, :2], 2.0, atol=0.1)  # 2-value dimensions: uniform as before


def test_sampling_validation_round_trip_cli_and_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = TrainConfig(sampling="balanced")
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.differences(TrainConfig()) == ["sampling"]
    with pytest.raises(ConfigError, match=r"sampling must be one of \['uniform', 'balanced'\]"):
        TrainConfig(sampling="flops")
    with pytest.raises(ConfigError, match="sampling='balanced' is only used by schedule='sand"):
        TrainConfig(schedule="sorted", sampling="balanced")
    from nas.cli import main

    argv = ["train", "--space", "tiny", "--data", "digits", "--limit", "120", "--epochs", "1",
            "--batch-size", "32", "--runs-dir", str(tmp_path), "--run", "r"]
    assert main([*argv, "--sampling", "balanced", "--json"]) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "r/supernet/config.json").read_text())["config"]
    assert saved["sampling"] == "balanced"
    assert main([*argv, "--resume"]) == 2  # uniform now: refused
    assert "other settings for ['sampling']" in capsys.readouterr().err
    assert main([*argv, "--sampling", "balanced", "--resume"]) == 0

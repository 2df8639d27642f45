"""Supernet training: sandwich and progressive schedules, run directory, exact resume."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from _grads import assert_grads_are_the_hand_sum
from _tiny import make_tiny
from _train_child import CONFIG, run

import nas
from nas.checkpoint import load_checkpoint
from nas.data import load_data, split
from nas.tasks import create_task
from nas.train import Phase, Progress, TrainConfig, train_supernet
from nas.train_loop import TrainLoop, lr_factor, param_groups

CHILD = Path(__file__).resolve().parent / "_train_child.py"


@pytest.fixture(scope="module")
def digits() -> tuple:
    return split(load_data("digits", limit=160, seed=0), 0.2, seed=0)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path / "supernet" / "checkpoint.pt", space=nas.create_space("tiny"))[
        "model"
    ]


def test_sandwich_run_writes_run_directory_and_refuses_overwrite(
    digits: tuple, tmp_path: Path
) -> None:
    train, val = digits
    torch.manual_seed(0)
    net = make_tiny()
    start = {k: v.clone() for k, v in net.state_dict().items()}
    seen: list[Progress] = []
    config = TrainConfig(epochs=1, batch_size=16, num_random=1, eval_bn_batches=1, seed=1)
    result = train_supernet(net, train, val, config, tmp_path / "run", progress=seen.append)
    assert result.steps == 8 == len(seen) and seen[-1].total_steps == 8 and result.epochs == 1
    assert seen[0].images_per_second > 0 and seen[0].lr > 0
    history = [
        json.loads(line)
        for line in (tmp_path / "run/supernet/history.jsonl").read_text().splitlines()
    ]
    assert len(history) == 1 and history[0]["step"] == 8
    expected = {"loss", "val_accuracy_smallest", "val_accuracy_middle", "val_accuracy_largest"}
    assert expected <= set(history[0])
    assert set(result.final) == {"smallest", "middle", "largest"}
    saved = json.loads((tmp_path / "run/supernet/config.json").read_text())
    recorded = TrainConfig.from_dict(saved["config"])  # the task's defaults, as used
    assert recorded == config.resolved("classification") and saved["space"] == "tiny"
    assert (recorded.optimizer, recorded.lr, recorded.weight_decay) == ("sgd", 0.05, 3e-5)
    weights = _weights(tmp_path / "run")
    assert any(not torch.equal(weights[k], start[k]) for k in start if k.endswith("weight"))
    with pytest.raises(ValueError, match="already holds a trained supernet"):
        train_supernet(net, train, val, config, tmp_path / "run")
    with pytest.raises(ValueError, match=r"other settings for \['lr'\]"):
        train_supernet(
            net,
            train,
            val,
            TrainConfig(**{**config.__dict__, "lr": 0.1}),
            tmp_path / "run",
            resume=True,
        )
    again = train_supernet(make_tiny(), train, val, config, tmp_path / "run", resume=True)
    assert again.steps == 8 and again.history == result.history  # finished: nothing to do


def test_sigkill_mid_epoch_then_resume_is_bitwise_identical(tmp_path: Path) -> None:
    run(str(tmp_path / "straight"), resume=False, sleep=0.0)
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(CHILD.parents[1])}
    child = subprocess.Popen([sys.executable, str(CHILD), str(killed), "--sleep", "0.3"], env=env)
    checkpoint = killed / "supernet" / "checkpoint.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    state = load_checkpoint(checkpoint, space=nas.create_space("tiny"))
    steps_per_epoch = 160 // CONFIG.batch_size // 2  # limit 200, 20% validation, batch 16 -> 10
    assert 0 < state["batch"] < steps_per_epoch, "the kill must land mid-epoch"
    run(str(killed), resume=True, sleep=0.0)
    a, b = _weights(tmp_path / "straight"), _weights(killed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (tmp_path / "straight/supernet/history.jsonl").read_text() == (
        killed / "supernet/history.jsonl"
    ).read_text()


def test_ctrl_c_saves_a_checkpoint_first(digits: tuple, tmp_path: Path) -> None:
    train, val = digits

    def interrupt(p: Progress) -> None:
        if p.step == 3:
            os.kill(os.getpid(), signal.SIGINT)

    config = TrainConfig(epochs=1, batch_size=16, num_random=0, checkpoint_every=100)
    with pytest.raises(KeyboardInterrupt):
        train_supernet(make_tiny(), train, val, config, tmp_path / "run", progress=interrupt)
    state = load_checkpoint(tmp_path / "run/supernet/checkpoint.pt", space=nas.create_space("tiny"))
    assert state["step"] == 3 and state["batch"] == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # handler restored


def test_progressive_phases_teacher_and_channel_reorganisation(
    digits: tuple, tmp_path: Path
) -> None:
    train, val = digits
    net = make_tiny()
    calls: list[int] = []
    original = net.reorganize_channels

    def spy() -> None:
        calls.append(1)
        original()

    net.reorganize_channels = spy
    phases = (
        Phase(name="full", elastic=("resolution",), epochs=1, lr=0.05, distill=False),
        Phase(name="kernel", elastic=("resolution", "kernel"), epochs=1, lr=0.02),
        Phase(
            name="expand",
            elastic=("resolution", "kernel", "depth", "expand"),
            epochs=1,
            lr=0.02,
            subnets_per_step=2,
        ),
    )
    config = TrainConfig(schedule="progressive", phases=phases, batch_size=32, eval_bn_batches=1)
    result = train_supernet(net, train, val, config, tmp_path / "run")
    assert [row["phase"] for row in result.history] == ["full", "kernel", "expand"]
    assert calls == [1]
    state = load_checkpoint(tmp_path / "run/supernet/checkpoint.pt", space=net.space)
    assert state["teacher"] is not None and state["phase"] == 2
    # the teacher is frozen at the end of the full phase: it differs from the trained supernet
    assert any(
        not torch.equal(state["teacher"][k], state["model"][k])
        for k in state["model"]
        if k.endswith("weight")
    )


def test_phase_sampling_keeps_other_dimensions_largest() -> None:
    space = nas.create_space("tiny")
    phase = Phase(name="kernel", elastic=("kernel",), epochs=1, lr=0.1)
    rng = np.random.default_rng(0)
    archs = [phase.sample(space, rng) for _ in range(30)]
    largest = space.largest()
    for arch in archs:
        for name in space.names:
            if not name.endswith(".kernel"):
                assert arch[name] == largest[name]
    assert {arch["s1.b0.kernel"] for arch in archs} == {3, 5}


def test_default_progressive_phases_follow_ofa_order() -> None:
    phases = TrainConfig(schedule="progressive", epochs=9, lr=0.3).resolved_phases()
    assert [p.name for p in phases] == ["full", "kernel", "depth", "expand"]
    assert [p.epochs for p in phases] == [3, 2, 2, 2] and phases[1].lr == pytest.approx(0.1)
    assert not phases[0].distill and all(p.distill for p in phases[1:])


def test_config_validation_names_field_and_allowed_values() -> None:
    with pytest.raises(ValueError, match=r"schedule must be one of \['sandwich', 'progressive'"):
        TrainConfig(schedule="zigzag")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        TrainConfig(batch_size=0)
    with pytest.raises(ValueError, match="epochs must be >= 4"):
        TrainConfig(schedule="progressive", epochs=2)
    with pytest.raises(ValueError, match="device must be"):
        TrainConfig(device="tpu")
    with pytest.raises(ValueError, match="unknown TrainConfig fields"):
        TrainConfig.from_dict({"epoch": 3})
    config = TrainConfig(
        schedule="progressive", phases=(Phase(name="a", elastic=("kernel",), epochs=2, lr=0.1),)
    )
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_cuda_device_is_refused_clearly_without_cuda(digits: tuple, tmp_path: Path) -> None:
    train, val = digits
    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        train_supernet(make_tiny(), train, val, TrainConfig(device="cuda"), tmp_path / "run")


def test_no_weight_decay_on_norms_and_biases_and_warmup_cosine() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2)
    )
    decay, no_decay = param_groups(model, 0.1)
    assert decay["weight_decay"] == 0.1 and len(decay["params"]) == 2
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 4
    factors = [lr_factor(s, 10, 2) for s in range(10)]
    assert factors[:3] == [0.5, 1.0, 1.0] and factors[-1] < 0.05
    assert all(a >= b for a, b in itertools.pairwise(factors[1:]))


def test_cli_trains_resumes_and_reports(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    argv = [
        "train",
        "--space",
        "tiny",
        "--data",
        "digits",
        "--limit",
        "120",
        "--epochs",
        "1",
        "--batch-size",
        "32",
        "--num-random",
        "0",
        "--runs-dir",
        str(tmp_path),
        "--run",
        "r",
    ]
    assert main([*argv, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3 and [r["subnet"] for r in out["subnets"]] == [
        "smallest",
        "middle",
        "largest",
    ]
    assert main(argv) == 2
    assert "already holds a trained supernet" in capsys.readouterr().err
    assert main([*argv, "--resume"]) == 0
    table = capsys.readouterr().out
    assert "val accuracy" in table and "largest" in table
    assert main(["train", "--space", "tiny", "--data", str(tmp_path / "nope")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_sandwich_step_accumulates_ce_and_in_place_distillation(
    digits: tuple, tmp_path: Path
) -> None:
    """One step == largest (CE) + random + smallest (CE + KD to the largest's logits), summed."""
    import copy

    from nas.rundir import RunDir

    train, val = digits
    torch.manual_seed(0)
    net = make_tiny()
    twin = copy.deepcopy(net)
    config = TrainConfig(batch_size=16, num_random=1, seed=5, kd_ratio=0.7, label_smoothing=0.1)
    run = RunDir.create(tmp_path / "run", net.space)
    trainer = TrainLoop(
        net, train, val, config, run, rank=0, world_size=1, reduce_grads=None, progress=None,
        task=create_task("classification"),
    )
    trainer._start_phase(0)
    x, y = train.batch(np.arange(16))
    archs = trainer._step_archs(trainer.phases[0], np.random.default_rng([5, 7, 0]))
    assert archs[0] == net.space.largest() and archs[-1] == net.space.smallest() and len(archs) == 3
    torch.manual_seed(1)
    trainer.train_step(x, y, trainer.phases[0])

    torch.manual_seed(1)  # same dropout masks, same order
    assert_grads_are_the_hand_sum(net, twin, archs, x, y, kd_ratio=0.7)


def test_progressive_resume_across_phases_is_bitwise_identical(
    digits: tuple, tmp_path: Path
) -> None:
    train, val = digits  # 128 training images: 4 steps per epoch at batch 32
    phases = (
        Phase(name="full", elastic=("resolution",), epochs=1, lr=0.05, distill=False),
        Phase(name="kernel", elastic=("resolution", "kernel"), epochs=1, lr=0.02),
        Phase(
            name="expand",
            elastic=("kernel", "depth", "expand"),
            epochs=1,
            lr=0.02,
            subnets_per_step=2,
        ),
    )
    config = TrainConfig(
        schedule="progressive", phases=phases, batch_size=32, eval_bn_batches=1, seed=9
    )

    def fresh() -> object:
        torch.manual_seed(0)
        return make_tiny()

    straight = train_supernet(fresh(), train, val, config, tmp_path / "a")

    def stop_at(step: int) -> Callable[[Progress], None]:
        def callback(p: Progress) -> None:
            if p.step == step:
                os.kill(os.getpid(), signal.SIGINT)

        return callback

    with pytest.raises(KeyboardInterrupt):  # at the end of the first phase
        train_supernet(fresh(), train, val, config, tmp_path / "b", progress=stop_at(4))
    with pytest.raises(KeyboardInterrupt):  # mid-way through the expand phase
        train_supernet(
            fresh(), train, val, config, tmp_path / "b", resume=True, progress=stop_at(10)
        )
    resumed = train_supernet(fresh(), train, val, config, tmp_path / "b", resume=True)
    assert resumed.steps == straight.steps == 12 and resumed.history == straight.history
    a, b = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_unset_optimizer_lr_and_weight_decay_resolve_to_the_task_defaults() -> None:
    lm = TrainConfig(epochs=2).resolved("language_modelling")
    assert (lm.optimizer, lm.lr, lm.weight_decay) == ("adamw", 3e-3, 0.01) and lm.epochs == 2
    assert lm.label_smoothing == 0.0  # smoothing would raise the perplexity judged
    image = TrainConfig().resolved(create_task("classification"))
    assert (image.optimizer, image.lr, image.weight_decay) == ("sgd", 0.05, 3e-5)
    assert image.label_smoothing == 0.1
    given = TrainConfig(lr=0.02, optimizer="sgd", label_smoothing=0.2).resolved(
        "language_modelling")
    assert (given.optimizer, given.lr, given.weight_decay) == ("sgd", 0.02, 0.01)
    assert given.label_smoothing == 0.2
    assert lm.resolved("classification") == lm  # resolved values are kept (exact resume)
    assert TrainConfig.from_dict(json.loads(json.dumps(lm.to_dict()))) == lm
    with pytest.raises(nas.ConfigError, match="lr is None"):
        TrainConfig().resolved_phases()
    with pytest.raises(nas.ConfigError, match="unknown task 'nope'"):
        TrainConfig().resolved("nope")


def test_train_help_names_each_task_default(capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    sgd = re.search(r"SGD lr ([\d.e-]+) label smoothing ([\d.]+) for image classification", text)
    adamw = re.search(r"AdamW lr ([\d.e-]+) weight decay ([\d.e-]+) label smoothing ([\d.]+) "
                      r"for language models", text)
    assert sgd and adamw, text
    image, lm = create_task("classification"), create_task("language_modelling")
    assert image.train_defaults["optimizer"] == "sgd" and lm.train_defaults["optimizer"] == "adamw"
    assert (float(sgd[1]), float(sgd[2])) == (image.train_defaults["lr"],
                                              image.train_defaults["label_smoothing"])
    assert (float(adamw[1]), float(adamw[2]), float(adamw[3])) == (
        lm.train_defaults["lr"], lm.train_defaults["weight_decay"],
        lm.train_defaults["label_smoothing"])
    assert "--optimizer {sgd,adamw}" in text and "--weight-decay" in text

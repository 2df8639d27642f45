"""Quantization-aware training: straight-through fake quantization in the training step."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import nas
from nas.data import load_data, split
from nas.errors import ConfigError
from nas.quantization import qat
from nas.quantization.fake import (
    act_qparams,
    calibrate,
    fake_quant_act,
    fake_quant_weight,
    fake_quantized,
    layer_bits,
)
from nas.quantization.weight_only import fake_quant_blockwise
from nas.train import Phase, TrainConfig, train_supernet

SPACES = ["tiny+q8-32b", "vit_mini+q4-8-32b"]


@pytest.fixture(scope="module")
def digits() -> tuple:
    return split(load_data("digits", limit=96, seed=0), 0.25, seed=0)


def _all_bits(space: nas.SearchSpace, arch: nas.ArchConfig, value: int) -> nas.ArchConfig:
    return arch.replace(space, **{n: value for n in space.names if n.endswith(".bits")})


def _no_hooks(net: torch.nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks
               and "active_weight" not in vars(m) for m in net.modules())


def _input(space: nas.SearchSpace, arch: nas.ArchConfig, net: Any) -> torch.Tensor:
    from nas.evaluation import arch_resolution

    res = arch_resolution(space, arch, net)
    assert res is not None
    return torch.randn(4, 3, res, res, generator=torch.Generator().manual_seed(3))


# ------------------------------------------------------------------ the STE operations
def test_activation_ste_is_fake_quant_forward_and_passes_gradient_inside_the_range() -> None:
    x = torch.randn(2, 3, 5, 5, generator=torch.Generator().manual_seed(0)) * 3
    g = torch.rand(x.shape, generator=torch.Generator().manual_seed(1)) + 0.5
    for lo, hi in ((float(x.min()), float(x.max())), (-1.0, 2.0)):
        xr = x.clone().requires_grad_(True)
        rng = (None, None) if lo == float(x.min()) else (torch.tensor(lo), torch.tensor(hi))
        out = qat.ste_act(xr, *rng)
        torch.testing.assert_close(out, fake_quant_act(x, *act_qparams(lo, hi)), rtol=0, atol=0)
        (out * g).sum().backward()
        assert xr.grad is not None
        scale, zero = act_qparams(lo, hi)
        shifted = torch.round(x / scale) + zero
        inside = (shifted >= -128) & (shifted <= 127)
        torch.testing.assert_close(xr.grad, torch.where(inside, g, torch.zeros_like(g)))
        if lo == float(x.min()):  # the batch's own range: every value inside
            assert bool(inside.all()) and torch.equal(xr.grad, g)
        else:  # a narrower range saturates some values: no gradient there
            assert 0 < int((~inside).sum()) < x.numel() and bool((xr.grad[~inside] == 0).all())


@pytest.mark.parametrize("kind", ["per_channel", "per_channel_reduced", "block4", "block8"])
def test_weight_ste_is_fake_quant_forward_and_the_float_gradient(kind: str) -> None:
    w = torch.randn(8, 40, generator=torch.Generator().manual_seed(0))
    ste: Callable[..., torch.Tensor]
    if kind.startswith("per_channel"):
        w = w.view(8, 10, 2, 2)
        qmax = 64 if kind.endswith("reduced") else 127
        ste, reference = qat.ste_weight, (lambda t: fake_quant_weight(t, qmax))
        args: tuple[int, ...] = (qmax,)
    else:
        bits = int(kind[-1])
        ste, reference = qat.ste_blockwise, (lambda t: fake_quant_blockwise(t, bits))
        args = (bits,)
    g = torch.randn(w.shape, generator=torch.Generator().manual_seed(1))
    wr = w.clone().requires_grad_(True)
    out = ste(wr, *args)
    assert torch.equal(out, reference(w)) and not torch.equal(out, w)
    (out * g).sum().backward()
    assert wr.grad is not None and torch.equal(wr.grad, g)  # the float gradient: d(w.g)/dw
    plain = w.clone().requires_grad_(True)  # without the STE, rounding kills the gradient
    plain_out = reference(plain)
    if plain_out.requires_grad:
        (plain_out * g).sum().backward()
    assert plain.grad is None or float(plain.grad.abs().max()) == 0.0


# ------------------------------------------------------------------ in the supernet
@pytest.mark.parametrize("name", SPACES)
def test_context_quantizes_the_policy_passes_gradients_and_leaves_nothing(name: str) -> None:
    space = nas.create_space(name)
    torch.manual_seed(0)
    net = nas.create_supernet(name, num_classes=10).eval()
    arch = _all_bits(space, space.smallest(), 8)
    quantized = [layer for layer, _ in layer_bits(net, arch)]
    assert quantized
    x = _input(space, arch, net)
    net.set_active(arch)
    with torch.no_grad():
        floats = net(x)
    with qat.quantization_aware(net, arch):
        assert not _no_hooks(net)
        out = net(x)
    assert _no_hooks(net)
    out.square().sum().backward()  # after exit: the graph keeps the STE
    assert (out - floats).abs().max() > 1e-6  # really quantized
    for layer in quantized:
        grad = layer.conv.weight.grad
        assert grad is not None and float(grad.abs().max()) > 0, layer.name
    with torch.no_grad():
        assert torch.equal(net(x), floats)
        if name.startswith("vit"):  # weight-only: the same numbers as evaluation's fake quant
            with fake_quantized(net, arch, calibrate(net, arch, [])):
                torch.testing.assert_close(out.detach(), net(x), rtol=0, atol=0)
    float_arch = _all_bits(space, arch, 32)
    with qat.quantization_aware(net, float_arch), torch.no_grad():  # all float: no hook
        assert _no_hooks(net) and torch.equal(net(x), floats)


def test_refuses_a_float_space_and_nesting_one_line_each() -> None:
    net = nas.create_supernet("tiny", num_classes=10)
    with (
        pytest.raises(ConfigError, match=r"^quantization-aware training needs a space with a "
                      r"quantization policy; 'tiny' has none[^\n]*$"),
        qat.quantization_aware(net, net.space.largest()),
    ):
        pass
    space = nas.create_space("vit_mini+q4-8-32b")
    qnet = nas.create_supernet(space.name, num_classes=10)
    arch = _all_bits(space, space.smallest(), 4)
    with (
        fake_quantized(qnet, arch, calibrate(qnet, arch, [])),
        pytest.raises(ConfigError, match=r"fake-quantized already; [^\n]*$"),
        qat.quantization_aware(qnet, arch),
    ):
        pass
    assert _no_hooks(qnet)


# ------------------------------------------------------------------ training
@contextmanager
def _recording(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[nas.ArchConfig]]:
    seen: list[nas.ArchConfig] = []
    original = qat.quantization_aware

    @contextmanager
    def spy(supernet: Any, arch: nas.ArchConfig) -> Iterator[None]:
        seen.append(arch)
        with original(supernet, arch):
            yield

    with monkeypatch.context() as m:
        m.setattr(qat, "quantization_aware", spy)
        yield seen


def _train(name: str, digits: tuple, path: Path, **kw: Any) -> tuple[Any, Any]:
    train, val = digits
    torch.manual_seed(0)
    net = nas.create_supernet(name, num_classes=10)
    config = TrainConfig(epochs=1, batch_size=24, num_random=1, eval_bn_batches=1, seed=1, **kw)
    return net, train_supernet(net, train, val, config, path)


@pytest.mark.parametrize("name", SPACES)
def test_qat_training_runs_changes_weights_and_keeps_the_teacher_float(
    name: str, digits: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    torch.manual_seed(0)
    start = nas.create_supernet(name, num_classes=10).state_dict()
    with _recording(monkeypatch) as seen:
        net, result = _train(name, digits, tmp_path / "qat", quantization_aware=True)
    space = net.space
    assert result.steps == 3 and len(seen) == 2 * 3  # the random and the smallest of 3 steps
    assert space.largest() not in seen  # the in-place teacher stays float
    assert any(layer_bits(net, a) for a in seen)  # some trained quantized
    weights = net.state_dict()
    assert any(not torch.equal(weights[k], start[k]) for k in start if k.endswith("weight"))
    float_net, _ = _train(name, digits, tmp_path / "float")
    floats = float_net.state_dict()
    assert any(not torch.equal(weights[k], floats[k]) for k in start)  # QAT changed training
    saved = json.loads((tmp_path / "qat/supernet/config.json").read_text())
    assert saved["config"]["quantization_aware"] is True
    assert TrainConfig.from_dict(saved["config"]).quantization_aware is True
    # no hooks after training: the float forward equals a fresh model's with the same weights
    assert _no_hooks(net)
    fresh = nas.create_supernet(name, num_classes=10)
    fresh.load_state_dict(weights)
    arch = _all_bits(space, space.smallest(), 8)
    x = _input(space, arch, net)
    for model in (net, fresh):
        model.eval().set_active(arch)
    with torch.no_grad():
        assert torch.equal(net(x), fresh(x))
    # resume with the other value is refused like any other setting
    train, val = digits
    with pytest.raises(ValueError, match=r"other settings for \['quantization_aware'\]"):
        config = TrainConfig(epochs=1, batch_size=24, num_random=1, eval_bn_batches=1, seed=1)
        train_supernet(net, train, val, config, tmp_path / "qat", resume=True)


def test_sorted_and_progressive_with_bits_train_quantized(
    digits: tuple, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = "tiny+q8-32b"
    with _recording(monkeypatch) as seen:
        _train(name, digits, tmp_path / "sorted", schedule="sorted", num_nested=2,
               quantization_aware=True)
    assert len(seen) == 3 and nas.create_space(name).largest() not in seen
    phases = (Phase(name="qat", elastic=("resolution", "kernel", "bits"), epochs=1, lr=0.01,
                    distill=False),)
    with _recording(monkeypatch) as seen:
        _train(name, digits, tmp_path / "prog", schedule="progressive", phases=phases,
               quantization_aware=True)
    space = nas.create_space(name)
    assert len(seen) == 3 and any(
        a[n] == 8 for a in seen for n in space.names if n.endswith(".bits"))


def test_bad_input_one_line_each(
    digits: tuple, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(ConfigError, match=r"^quantization-aware training needs a space with a "
                       r"quantization policy; 'tiny' has none[^\n]*$"):
        _train("tiny", digits, tmp_path / "float", quantization_aware=True)
    assert not (tmp_path / "float").exists()  # refused before the run directory is written
    with pytest.raises(ConfigError, match=r"^quantization_aware must be True or False, got 1$"):
        TrainConfig(quantization_aware=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"needs a phase whose elastic kinds include 'bits'"):
        TrainConfig(schedule="progressive", epochs=4, quantization_aware=True)
    from nas.cli import main

    argv = ["train", "--space", "tiny", "--data", "digits", "--limit", "60", "--epochs", "1",
            "--quantization-aware", "--runs-dir", str(tmp_path), "--run", "cli"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'tiny' has none" in err, err
    assert not (tmp_path / "cli").exists()  # refused before the run directory is written


def test_cli_flag_trains_and_records(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nas.cli import main

    argv = ["train", "--space", "tiny+q8-32b", "--data", "digits", "--limit", "60",
            "--epochs", "1", "--batch-size", "30", "--num-random", "1", "--quantization-aware",
            "--runs-dir", str(tmp_path), "--run", "cli", "--json"]
    assert main(argv) == 0
    capsys.readouterr()
    saved = json.loads((tmp_path / "cli/supernet/config.json").read_text())
    assert saved["config"]["quantization_aware"] is True
    assert np.isfinite(saved["config"]["lr"])

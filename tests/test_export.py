"""Export folders: files, ONNX Runtime agreement, round trips and clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from _nets import randomize_bn
from torch import nn

import nas
from nas.export import export_subnet, load_subnet
from nas.supernet import Supernet
from search_spaces.nas_bench_201 import make_space as make_nb201_space


def make_supernet(name: str, num_classes: int = 10) -> Supernet:
    torch.manual_seed(0)
    net = nas.create_supernet(name, num_classes=num_classes)
    assert isinstance(net, Supernet)
    randomize_bn(net, 1)
    return net.eval()


def onnx_error(session: object, model: nn.Module, x: torch.Tensor) -> float:
    name = session.get_inputs()[0].name  # type: ignore[attr-defined]
    (y,) = session.run(None, {name: x.numpy()})  # type: ignore[attr-defined]
    with torch.no_grad():
        return float(np.abs(y - model(x).numpy()).max())


@pytest.fixture(scope="module")
def tiny_export(tmp_path_factory: pytest.TempPathFactory) -> tuple[Supernet, nas.ArchConfig, Path]:
    supernet = make_supernet("tiny")
    arch = supernet.space.sample(np.random.default_rng(3))
    out = tmp_path_factory.mktemp("export") / arch.key
    result = export_subnet(supernet, arch, out, metrics={"accuracy": 0.5, "latency_ms": 1.25})
    assert result == out
    return supernet, arch, out


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target)
    return target


def test_export_writes_every_file(tiny_export: tuple[Supernet, nas.ArchConfig, Path]) -> None:
    supernet, arch, out = tiny_export
    names = sorted(p.name for p in out.iterdir())
    assert names == ["arch.json", "metrics.json", "model.onnx", "program.pt2", "weights.pt"]
    info = json.loads((out / "arch.json").read_text())
    assert info["space"] == "tiny"
    assert info["fingerprint"] == supernet.space.fingerprint()
    assert supernet.space.from_json(info) == arch
    assert info["num_classes"] == 10
    assert info["resolution"] == arch["resolution"]
    assert info["input_shape"] == [2, 3, arch["resolution"], arch["resolution"]]
    assert info["dynamic_batch"] is True
    assert "create_supernet" in info["rebuild"]
    assert set(info["files"]) == {"weights.pt", "program.pt2", "model.onnx", "metrics.json"}
    assert json.loads((out / "metrics.json").read_text()) == {"accuracy": 0.5, "latency_ms": 1.25}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_onnx_matches_torch(tiny_export: tuple[Supernet, nas.ArchConfig, Path]) -> None:
    supernet, arch, out = tiny_export
    session = load_subnet(out, format="onnx")
    r = int(arch["resolution"])
    x = torch.randn(3, 3, r, r, generator=torch.Generator().manual_seed(5))
    model = supernet.extract(arch).eval()
    assert onnx_error(session, model, x) <= 1e-4  # any batch size
    assert onnx_error(session, model, x[:1]) <= 1e-4


def test_round_trips_give_identical_outputs(
    tiny_export: tuple[Supernet, nas.ArchConfig, Path],
) -> None:
    supernet, arch, out = tiny_export
    r = int(arch["resolution"])
    x = torch.randn(1, 3, r, r)
    reference = supernet.extract(arch).eval()
    assert supernet.training is False
    model = load_subnet(out)
    assert not model.training
    program = load_subnet(out, format="export")
    with torch.no_grad():
        expected = reference(x)
        assert torch.equal(model(x), expected)
        assert (program.module()(x) - expected).abs().max().item() <= 1e-6
        batch = torch.randn(4, 3, r, r)
        assert (program.module()(batch) - reference(batch)).abs().max().item() <= 1e-6


def test_corrupt_weights_give_a_clear_error(
    tiny_export: tuple[Supernet, nas.ArchConfig, Path], tmp_path: Path
) -> None:
    out = copy_of(tiny_export[2], tmp_path)
    weights = out / "weights.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = b"\x00" * 64
    weights.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"weights\.pt.*(corrupt|checksum)"):
        load_subnet(out)
    # without a recorded checksum the loader itself must notice
    info = json.loads((out / "arch.json").read_text())
    info["files"] = {}
    (out / "arch.json").write_text(json.dumps(info))
    weights.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match=r"weights\.pt: corrupt"):
        load_subnet(out)


def test_space_change_is_refused(
    tiny_export: tuple[Supernet, nas.ArchConfig, Path], tmp_path: Path
) -> None:
    out = copy_of(tiny_export[2], tmp_path)
    info = json.loads((out / "arch.json").read_text())
    info["fingerprint"] = "0" * 16
    (out / "arch.json").write_text(json.dumps(info))
    with pytest.raises(ValueError, match="fingerprint"):
        load_subnet(out)


def test_missing_files_and_bad_arguments(
    tiny_export: tuple[Supernet, nas.ArchConfig, Path], tmp_path: Path
) -> None:
    supernet, arch, _ = tiny_export
    with pytest.raises(FileNotFoundError, match="no such export folder"):
        load_subnet(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match=r"arch\.json"):
        load_subnet(tmp_path)
    out = copy_of(tiny_export[2], tmp_path)
    (out / "model.onnx").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.onnx"):
        load_subnet(out, format="onnx")
    with pytest.raises(ValueError, match="format must be one of"):
        load_subnet(out, format="tflite")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="formats"):
        export_subnet(supernet, arch, tmp_path / "x", formats=("torchscript",))
    with pytest.raises(nas.InvalidArchError):
        export_subnet(supernet, nas.create_space("nb201").largest(), tmp_path / "y")


def test_nb201_export_onnx_and_torch(tmp_path: Path) -> None:
    supernet = make_supernet("nb201")
    arch = make_nb201_space().parse(
        "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    )
    out = tmp_path / "nb201"
    out.mkdir()
    (out / "program.pt2").write_bytes(b"stale file of an earlier export")
    export_subnet(supernet, arch, out, formats=("onnx",))
    assert not (out / "program.pt2").exists()
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(FileNotFoundError):
        load_subnet(out, format="export")
    model = load_subnet(out)
    assert onnx_error(load_subnet(out, format="onnx"), model, x) <= 1e-4
    with torch.no_grad():
        assert torch.equal(model(x), supernet.extract(arch).eval()(x))


@pytest.mark.slow
def test_resnet50_export_onnx(tmp_path: Path) -> None:
    supernet = make_supernet("ofa_resnet50", num_classes=1000)
    arch = supernet.space.sample(np.random.default_rng(0)).replace(supernet.space, resolution=128)
    out = export_subnet(supernet, arch, tmp_path / "r50", formats=("onnx",))
    x = torch.randn(1, 3, 128, 128)
    assert onnx_error(load_subnet(out, format="onnx"), supernet.extract(arch).eval(), x) <= 1e-4

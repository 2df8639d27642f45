"""Extraction and export fidelity of the ResNet50 and NAS-Bench-201 supernets.

Measures, in one run (eval mode, BN running statistics and affine parameters randomised):

(a) max |supernet(x) - extract(arch)(x)| over N random archs of ``nb201`` and ``ofa_resnet50``
    (goal: <= 1e-5 in float32);
(b) max |ONNX Runtime - torch| of an exported subnet of ``tiny``, ``nb201`` and ``ofa_resnet50``
    (goal: <= 1e-4), with the export time;
(c) with ``--ofa`` (run it with bench/.ofa-env/bin/python, see bench/ofa_reference/): the same
    weights loaded into the reference ``ofa`` package's ``OFAResNets`` and compared with ours,
    supernet and extracted subnet, plus the parameter count of the largest subnet of each.

Usage:
    python bench/bench_export_fidelity.py [--nb201-archs 100] [--resnet-archs 100]
    bench/.ofa-env/bin/python bench/bench_export_fidelity.py --ofa --skip-onnx
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas
from nas.export import export_subnet, load_subnet
from nas.supernet import Supernet
from search_spaces.resnet_net import from_ofa_state_dict


def randomize_bn(model: nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                n = m.num_features
                assert m.running_mean is not None and m.running_var is not None
                m.running_mean.copy_(torch.randn(n, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                m.weight.copy_(torch.rand(n, generator=g) * 0.5 + 0.3)
                m.bias.copy_(torch.randn(n, generator=g) * 0.2)


def supernet(name: str, num_classes: int) -> Supernet:
    torch.manual_seed(0)
    net = nas.create_supernet(name, num_classes=num_classes)
    assert isinstance(net, Supernet)
    randomize_bn(net, 1)
    return net.eval()


def extract_error(net: Supernet, n: int, resolution: int, batch: int) -> tuple[float, float]:
    """(max abs error, max |output|) over ``n`` random archs."""
    rng = np.random.default_rng(0)
    x = torch.randn(batch, 3, resolution, resolution, generator=torch.Generator().manual_seed(2))
    worst = scale = 0.0
    with torch.no_grad():
        for arch in net.space.sample_many(n, rng):
            net.set_active(arch)
            y = net(x)
            worst = max(worst, (y - net.extract(arch).eval()(x)).abs().max().item())
            scale = max(scale, y.abs().max().item())
    return worst, scale


def onnx_error(net: Supernet, arch: nas.ArchConfig, resolution: int) -> tuple[float, float]:
    """(max |ONNX Runtime - torch|, export seconds) of one exported arch."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        out = export_subnet(net, arch, Path(tmp) / arch.key, formats=("onnx",))
        seconds = time.perf_counter() - start
        session = load_subnet(out, format="onnx")
        x = torch.randn(1, 3, resolution, resolution, generator=torch.Generator().manual_seed(3))
        (y,) = session.run(None, {session.get_inputs()[0].name: x.numpy()})
        with torch.no_grad():
            ref = net.extract(arch).eval()(x).numpy()
    return float(np.abs(y - ref).max()), seconds


def against_ofa(net: Supernet, n: int, resolution: int) -> list[tuple[str, str, str]]:
    """Ours vs the reference ``OFAResNets`` with the same weights."""
    from ofa.imagenet_classification.elastic_nn.networks import OFAResNets

    ref = OFAResNets(
        n_classes=net.num_classes,
        dropout_rate=0,
        depth_list=[0, 1, 2],
        expand_ratio_list=[0.2, 0.25, 0.35],
        width_mult_list=[0.65, 0.8, 1.0],
    ).eval()
    ours, theirs = net.state_dict(), ref.state_dict()
    if len(ours) != len(theirs):
        raise SystemExit(f"state dicts differ in length: {len(ours)} vs {len(theirs)}")
    mapped = {}
    for (ref_key, ref_value), (key, value) in zip(theirs.items(), ours.items()):
        if ref_value.shape != value.shape:
            raise SystemExit(f"{ref_key} {tuple(ref_value.shape)} vs {key} {tuple(value.shape)}")
        mapped[ref_key] = value
    ref.load_state_dict(mapped)
    renamed = from_ofa_state_dict(ref.state_dict())
    if list(renamed) != list(ours) or any(not torch.equal(renamed[k], ours[k]) for k in ours):
        raise SystemExit("from_ofa_state_dict does not map OFA's names onto ours")
    rng = np.random.default_rng(5)
    x = torch.randn(2, 3, resolution, resolution, generator=torch.Generator().manual_seed(4))
    worst_super = worst_sub = 0.0
    params_differ = 0
    with torch.no_grad():
        for arch in net.space.sample_many(n, rng):
            config = net.space.to_ofa(arch)
            config.pop("r")
            ref.set_active_subnet(**config)
            net.set_active(arch)
            worst_super = max(worst_super, (ref(x) - net(x)).abs().max().item())
            sub = ref.get_active_subnet(preserve_weight=True).eval()
            mine = net.extract(arch).eval()
            worst_sub = max(worst_sub, (sub(x) - mine(x)).abs().max().item())
            params_differ += _params(sub) != _params(mine)
        ref.set_max_net()
        largest_ref = _params(ref.get_active_subnet(preserve_weight=False))
    largest = _params(net.extract(net.space.largest()))
    return [
        (f"ofa_resnet50 vs ofa.OFAResNets, supernet, {n} archs", f"{worst_super:.2e}", "-"),
        (f"ofa_resnet50 vs ofa.OFAResNets, extracted, {n} archs", f"{worst_sub:.2e}", "-"),
        ("archs whose subnet param counts differ", str(params_differ), "0"),
        ("largest subnet params: ours / ofa", f"{largest:,} / {largest_ref:,}",
         f"{largest / largest_ref:.4f}"),
    ]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nb201-archs", type=int, default=100)
    parser.add_argument("--resnet-archs", type=int, default=100)
    parser.add_argument("--resnet-resolution", type=int, default=128)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--skip-onnx", action="store_true")
    parser.add_argument("--ofa", action="store_true", help="compare with the reference ofa package")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows: list[tuple[str, str, str]] = []
    nb201 = supernet("nb201", 10)
    resnet = supernet("ofa_resnet50", 1000)
    start = time.perf_counter()
    err, scale = extract_error(nb201, args.nb201_archs, 32, 2)
    rows.append((f"nb201 extract, {args.nb201_archs} archs, 2x3x32x32", f"{err:.2e}",
                 f"{err / 1e-5:.3f} of 1e-5 (|y| <= {scale:.3g})"))
    r = args.resnet_resolution
    err, scale = extract_error(resnet, args.resnet_archs, r, 2)
    rows.append((f"ofa_resnet50 extract, {args.resnet_archs} archs, 2x3x{r}x{r}", f"{err:.2e}",
                 f"{err / 1e-5:.3f} of 1e-5 (|y| <= {scale:.3g})"))
    extract_seconds = time.perf_counter() - start
    if not args.skip_onnx:
        tiny = supernet("tiny", 10)
        cases = [
            ("tiny", tiny, tiny.space.sample(np.random.default_rng(3))),
            ("nb201", nb201, nb201.space.sample(np.random.default_rng(3))),
            ("ofa_resnet50", resnet, resnet.space.sample(np.random.default_rng(3))),
        ]
        for name, net, arch in cases:
            res = int(arch.get("resolution", 32) or 32)
            err, seconds = onnx_error(net, arch, res)
            rows.append((f"{name} ONNX Runtime vs torch, 1x3x{res}x{res}", f"{err:.2e}",
                         f"{err / 1e-4:.3f} of 1e-4 (export {seconds:.1f} s)"))
    if args.ofa:
        rows += against_ofa(resnet, min(args.resnet_archs, 20), 64)

    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'max abs error':>22}  ratio to goal")
    for label, value, ratio in rows:
        print(f"{label:<{width}}  {value:>22}  {ratio}")
    print(f"(extraction checks took {extract_seconds:.0f} s on {args.threads} thread(s))")


if __name__ == "__main__":
    main()

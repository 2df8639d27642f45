"""Our OFA-MobileNetV3 supernet vs the reference ``ofa`` package, weight for weight.

Builds the reference ``OFAMobileNetV3`` (kernels 3/5/7, expands 3/4/6, depths 2/3/4, width 1.0
or 1.2), gives it non-trivial BN statistics and kernel-transformation matrices, loads its
state dict into our supernet with ``load_ofa_state_dict`` (as a published OFA checkpoint would
be), then compares, for random archs in eval mode, the two outputs and the parameter counts of
OFA's own ``get_active_subnet`` with ours.

Run it in the reference environment (see setup.sh):
    bench/.ofa-env/bin/python bench/ofa_reference/compare_ofa.py [--archs 20] [--width 1.2]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE / "stubs"))

import nas  # noqa: E402
from search_spaces.mobilenet_v3_net import MobileNetV3Supernet  # noqa: E402
from search_spaces.mobilenet_v3_ofa_weights import load_ofa_state_dict  # noqa: E402


def ofa_mbv3(num_classes: int, width: float = 1.0) -> nn.Module:
    """The reference package's OFAMobileNetV3 with the published search space."""
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3

    return OFAMobileNetV3(  # type: ignore[no-any-return]
        n_classes=num_classes, dropout_rate=0.1, width_mult=width,
        ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--width", choices=["1.0", "1.2"], default="1.0")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    name = f"ofa_mbv3_w{args.width}"
    space = nas.create_space(name)
    ref = ofa_mbv3(1000, float(args.width))
    ref.train()
    with torch.no_grad():  # BN statistics that are not identity
        for _ in range(3):
            ref.sample_active_subnet()  # type: ignore[operator]
            ref(torch.randn(4, 3, 128, 128) * 2 + 0.3)
        for pname, p in ref.named_parameters():
            if pname.endswith("_matrix"):  # non-identity kernel transforms
                p.add_(0.05 * torch.randn_like(p))
    ours = nas.create_supernet(name, num_classes=1000)
    assert isinstance(ours, MobileNetV3Supernet)
    state = ref.state_dict()
    load_ofa_state_dict(ours, state)
    ours.eval()
    ref.eval()
    worst, params_equal = 0.0, 0
    for arch in space.sample_many(args.archs, rng):
        cfg = space.to_ofa(arch)
        r = int(cfg["r"])
        x = torch.randn(2, 3, r, r)
        ours.set_active(arch)
        ref.set_active_subnet(ks=cfg["ks"], e=cfg["e"], d=cfg["d"])  # type: ignore[operator]
        with torch.no_grad():
            worst = max(worst, float((ours(x) - ref(x)).abs().max()))
        sub = ref.get_active_subnet(preserve_weight=True)  # type: ignore[operator]
        params_equal += sum(p.numel() for p in sub.parameters()) == nas.count(space, arch)["params"]
    print(f"loaded {len(state)} tensors of ofa's OFAMobileNetV3 into ours")
    print(f"{name}, {args.archs} random archs: max |ours - ofa| = {worst:.3g}; "
          f"params equal to ofa's get_active_subnet: {params_equal}/{args.archs}")
    return 0 if worst <= 1e-4 and params_equal == args.archs else 1


if __name__ == "__main__":
    sys.exit(main())

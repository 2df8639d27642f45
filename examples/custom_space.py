"""A custom search space taken through the whole flow, in one script.

Defines a small MobileNetV3-style space in ~20 lines, registers it with the shipped
MobileNetV3 supernet builder, trains the supernet on the embedded digits dataset (sandwich
rule), searches for the most accurate subnet under a MACs limit with supernet accuracy as
the objective, and exports the winner (torch + ONNX).

Run: ``python examples/custom_space.py [--epochs 2] [--budget 24] [--out runs/custom-space]``
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import nas
from nas.data import load_data, resize, split
from nas.space import ArchConfig, SearchSpace, choice, stage
from search_spaces.mobilenet_v3_net import MobileNetV3Supernet, layer_specs


def make_space() -> SearchSpace:
    """Two elastic stages of inverted-residual blocks at three resolutions."""
    dims = [
        *stage("s1", depth=[1, 2], block={"kernel": [3, 5], "expand": [2, 4]}),
        *stage("s2", depth=[1, 2, 3], block={"kernel": [3, 5], "expand": [2, 3, 4]}),
        choice("resolution", [16, 20, 24]),
    ]
    meta = {
        "family": "mobilenetv3",
        "width_mult": 1.0,
        "stem_width": 8,
        "first_block_width": 8,
        "stage_widths": [16, 32],
        "strides": [2, 2],
        "activations": ["relu", "h_swish"],
        "squeeze_excite": [False, True],
        "final_expand_width": 64,
        "last_channel": 96,
    }
    return SearchSpace("my_space", dims, meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--budget", type=int, default=24)
    parser.add_argument("--out", default="runs/custom-space")
    args = parser.parse_args()

    nas.register_space("my_space", make_space, MobileNetV3Supernet, layers=layer_specs)
    space = nas.create_space("my_space")
    print(f"{space}: {space.size():,} networks")

    train, val = split(load_data("digits"), val_fraction=0.2, seed=0)
    supernet = nas.create_supernet("my_space", num_classes=10)
    config = nas.TrainConfig(schedule="sandwich", epochs=args.epochs, batch_size=64, lr=0.05)
    nas.train_supernet(supernet, train, val, config, Path(args.out) / "train")

    macs_limit = nas.count(space, space.largest(), num_classes=10)["macs"] // 2

    def evaluate(archs: list[ArchConfig]) -> list[dict[str, float]]:
        accuracy = nas.evaluate(supernet, archs, val, bn_data=train, n_bn_batches=5)
        return [
            {"accuracy": row["accuracy"],
             "macs": float(nas.count(space, a, num_classes=10)["macs"])}
            for a, row in zip(archs, accuracy)
        ]

    result = nas.search(
        space,
        evaluate,
        objectives={"accuracy": "max", "macs": "min"},
        constraints={"macs": float(macs_limit)},
        searcher="evolution",
        budget=args.budget,
        seed=0,
    )
    best = result.best()
    print(f"best under {macs_limit:,} MACs: {best.to_dict()}")
    out = nas.export_subnet(supernet, best, Path(args.out) / "export" / best.key)
    model = nas.load_subnet(out)
    x = resize(train.batch(np.arange(4))[0], int(best["resolution"]))
    print("exported to", out, "- logits shape", tuple(model(x).shape))


if __name__ == "__main__":
    main()

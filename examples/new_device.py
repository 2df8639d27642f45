"""Search for a new device from 20 latency measurements, the shipped profiles as prior.

The NAS-Bench-201 table in ``../shared/data`` plays the user's data: one device's latency
column is hidden ("the new phone") except for 20 measured cells. A transfer predictor fits
the new device from those 20 and the *other* devices' shipped profiles (HELP-style), is saved
as a profile JSON, and an evolutionary search maximises CIFAR-10 accuracy under the device's
median latency. The found cell's regret is measured against the table's true optimum.

Run: ``python examples/new_device.py [--device pixel3] [--measured 20] [--budget 100]``
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import nas
from nas.hardware.profile import HardwareProfile, LatencyModel, Provenance, save_profile
from predictors import create_predictor
from predictors.io import latency_predictor, predictor_to_json
from predictors.transfer import TransferPredictor
from search_spaces.nas_bench_201 import NB201Space

TABLE = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "nas_bench_201"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", default=str(TABLE / "nb201_cifar10_latency.csv"))
    parser.add_argument("--device", default="pixel3", help="the latency column to hide")
    parser.add_argument("--measured", type=int, default=20)
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not Path(args.table).is_file():
        print(f"new_device: no table at {args.table} (pass --table)", file=sys.stderr)
        return 2

    space = nas.create_space("nb201")
    assert isinstance(space, NB201Space)  # has parse() and format() of cell strings
    frame = pd.read_csv(args.table)
    column = f"latency_ms_{args.device}"
    if column not in frame.columns:
        raise SystemExit(f"new_device: no column {column!r} in {args.table}")
    archs = [space.parse(a) for a in frame["arch"]]
    latency = frame[column].to_numpy(dtype=float)
    accuracy = frame["cifar10_valid_acc"].to_numpy(dtype=float)

    # 1. "measure" 20 cells on the new device; the other shipped devices are the prior
    rng = np.random.default_rng(args.seed)
    measured = rng.choice(len(archs), size=args.measured, replace=False)
    others = [p for p in nas.list_profiles() if p.startswith("nb201_") and
              not p.endswith(args.device)]
    priors = [latency_predictor(nas.load_profile(p), space) for p in others]
    transfer = TransferPredictor(space, priors=priors)
    transfer.fit([archs[i] for i in measured], latency[measured])
    plain = create_predictor("ridge", space=space).fit([archs[i] for i in measured],
                                                       latency[measured])
    rest = np.setdiff1d(np.arange(len(archs)), measured)
    rest_archs = [archs[i] for i in rest]
    print(f"prior: {len(others)} shipped profiles; transfer chose the '{transfer.choice}' fit")
    print(f"Kendall tau on the {len(rest):,} unmeasured cells: transfer "
          f"{transfer.score(rest_archs, latency[rest])['kendall_tau']:.3f}, plain ridge "
          f"{plain.score(rest_archs, latency[rest])['kendall_tau']:.3f}")

    # 2. save it as the new device's profile
    profile = HardwareProfile(
        name=f"my_{args.device}", kind="phone", device=f"new device ({args.device})",
        runtime="other", provenance=Provenance(source=f"{args.measured} cells measured",
                                               licence="CC0-1.0"),
        latency={space.name: LatencyModel(space=space.name, fingerprint=space.fingerprint(),
                                          predictor=predictor_to_json(transfer),
                                          num_classes=10)},
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = save_profile(profile, tmp)
        device_model = latency_predictor(nas.load_profile(path), space)
        print(f"saved and reloaded {path.name}")

    # 3. search: accuracy from the table, latency from the new profile
    limit = float(np.median(latency))
    index = {a.key: i for i, a in enumerate(archs)}

    def evaluate(batch: list[nas.ArchConfig]) -> list[dict[str, float]]:
        predicted = device_model.predict(batch)
        return [{"accuracy": float(accuracy[index[a.key]]), "latency_ms": float(t)}
                for a, t in zip(batch, predicted)]

    result = nas.search(space, evaluate, objectives={"accuracy": "max", "latency_ms": "min"},
                        constraints={"latency_ms": limit}, searcher="evolution",
                        budget=args.budget, seed=args.seed)
    best = result.best()
    true_latency = latency[index[best.key]]
    optimum = accuracy[latency <= limit].max()
    print(f"best cell {space.format(best)}: accuracy {accuracy[index[best.key]]:.2f}%, "
          f"true latency {true_latency:.1f} ms (limit {limit:.1f} ms)")
    print(f"regret against the table's optimum under the true latency: "
          f"{optimum - accuracy[index[best.key]]:.2f} points")
    return 0


if __name__ == "__main__":
    sys.exit(main())

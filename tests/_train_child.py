"""Child process of the resume test: train ``tiny`` on digits, optionally slowly or resumed.

Usage: python tests/_train_child.py RUN_DIR [--resume] [--sleep SECONDS]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _tiny import make_tiny

from nas.data import load_data, split
from nas.train import TrainConfig, train_supernet

CONFIG = TrainConfig(
    epochs=2,
    batch_size=16,
    lr=0.05,
    num_random=1,
    checkpoint_every=3,
    eval_bn_batches=2,
    eval_max_batches=1,
    seed=3,
)


def run(run_dir: str, *, resume: bool, sleep: float) -> None:
    """Train (the same way in the parent test and in the child)."""
    torch.set_num_threads(1)
    torch.manual_seed(0)
    supernet = make_tiny()
    train, val = split(load_data("digits", limit=200, seed=0), 0.2, seed=0)
    train_supernet(
        supernet,
        train,
        val,
        CONFIG,
        run_dir,
        resume=resume,
        progress=(lambda p: time.sleep(sleep)) if sleep else None,
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("run_dir")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    args = parser.parse_args()
    run(args.run_dir, resume=args.resume, sleep=args.sleep)

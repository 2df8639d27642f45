"""Subnets of an imported Hugging Face GPT-2, straight from the import and after fine-tuning once.

1. A GPT-2 (``transformers``, built from a config, byte vocabulary) is trained here for
   ``--pretrain-seconds`` on the embedded ``pydoc`` corpus and saved with ``save_pretrained``:
   it plays the user's pretrained checkpoint.
2. ``from_hf`` imports it; subnets at about 50% and 75% of its parameters are picked (closest
   of ``--candidates`` random archs of the default space).
3. Validation perplexity of the full model and both subnets (a) straight from the import and
   (b) after one fine-tuning run (sandwich rule, ``--teacher``: ``initial`` distils from the
   frozen original model, ``inplace`` from the largest subnet) on the same corpus.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_hf_finetune.py [--pretrain-seconds 180]
        [--finetune-epochs 1] [--limit N] [--teacher initial,inplace] [--threads 1]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from nas.evaluation import evaluate
from nas.flow import load_supernet, train
from nas.space import ArchConfig
from nas.tasks import DataSpec, create_task
from nas.train import TrainConfig
from search_spaces.hf_space import from_hf
from search_spaces.transformer_layers import layer_specs


def pretrain(args: argparse.Namespace, train_data: Any, folder: Path) -> dict[str, float]:
    """Train a GPT-2 for ``--pretrain-seconds`` and ``save_pretrained`` it into ``folder``."""
    import transformers

    torch.manual_seed(0)
    config = transformers.GPT2Config(
        n_layer=args.layers, n_embd=args.width, n_head=args.heads, n_positions=args.seq_len,
        vocab_size=256, bos_token_id=None, eos_token_id=None, resid_pdrop=0.0, embd_pdrop=0.0,
        attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(config).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.pretrain_lr, weight_decay=0.01)
    rng = np.random.default_rng(0)
    started, steps = time.perf_counter(), 0
    while time.perf_counter() - started < args.pretrain_seconds:
        x, y = train_data.batch(rng.integers(0, len(train_data), args.batch_size))
        loss = F.cross_entropy(model(x).logits.flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    model.eval().save_pretrained(folder)
    return {"steps": steps, "seconds": time.perf_counter() - started, "loss": loss.item()}


def params(space: Any, arch: ArchConfig) -> int:
    """Parameters of ``arch``'s network (vocabulary 256)."""
    return sum(s.params() for s in layer_specs(space, arch, 256))


def pick(space: Any, fractions: list[float], candidates: int) -> dict[str, ArchConfig]:
    """Per fraction, the random arch whose parameters are closest to it."""
    full = params(space, space.largest())
    pool = space.sample_many(candidates, np.random.default_rng(0))
    counts = [params(space, a) for a in pool]
    out = {"full": space.largest()}
    for f in fractions:
        best = int(np.argmin([abs(c - f * full) for c in counts]))
        out[f"{round(100 * f)}%"] = pool[best]
    return out


def perplexities(supernet: Any, archs: dict[str, ArchConfig], val: Any) -> dict[str, float]:
    rows = evaluate(supernet, list(archs.values()), val, n_bn_batches=0, batch_size=64,
                    task=create_task("language_modelling"))
    return {name: math.exp(r["loss"]) for name, r in zip(archs, rows)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pretrain-seconds", type=float, default=180.0)
    p.add_argument("--pretrain-lr", type=float, default=3e-3)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--width", type=int, default=128)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--seq-len", type=int, default=64)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--limit", type=int, default=None, help="windows of the corpus to use")
    p.add_argument("--finetune-epochs", type=int, default=1)
    p.add_argument("--finetune-lr", type=float, default=1e-3)
    p.add_argument("--teacher", default="initial", help="comma-separated: initial, inplace")
    p.add_argument("--candidates", type=int, default=2000)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data = DataSpec(data="pydoc", seq_len=args.seq_len, limit=args.limit, seed=0)
    train_data, val_data = create_task("language_modelling").load(data)
    with tempfile.TemporaryDirectory() as tmp:
        info = pretrain(args, train_data, Path(tmp) / "model")
        print(f"pretrained GPT-2 {args.layers}x{args.width}: {info['steps']} steps in "
              f"{info['seconds']:.0f} s, last train loss {info['loss']:.3f}")
        supernet = from_hf(Path(tmp) / "model", name="hf_bench_gpt2")
        archs = pick(supernet.space, [0.5, 0.75], args.candidates)
        full = params(supernet.space, archs["full"])
        table = {"import": perplexities(supernet, archs, val_data)}
        for teacher in args.teacher.split(","):
            config = TrainConfig(epochs=args.finetune_epochs, batch_size=args.batch_size,
                                 lr=args.finetune_lr, optimizer="adamw", teacher=teacher,
                                 label_smoothing=0.0, warmup_epochs=0.1, eval_bn_batches=0,
                                 eval_max_batches=2, weight_decay=0.01)
            started = time.perf_counter()
            train(Path(tmp) / f"ft-{teacher}", supernet.space, data=data, config=config,
                  initial_state=supernet.state_dict(), supernet_options={"num_classes": 256})
            print(f"fine-tune (teacher={teacher}): {time.perf_counter() - started:.0f} s")
            tuned = load_supernet(Path(tmp) / f"ft-{teacher}")
            table[f"fine-tuned ({teacher})"] = perplexities(tuned, archs, val_data)
    print(f"\nvalidation perplexity (pydoc, {len(val_data)} windows of {args.seq_len} bytes)")
    print(f"{'subnet':<8}{'params':>10}{'share':>8}" + "".join(f"{k:>24}" for k in table))
    for name, arch in archs.items():
        n = params(supernet.space, arch)
        print(f"{name:<8}{n:>10}{n / full:>8.2f}" + "".join(f"{t[name]:>24.3f}"
                                                            for t in table.values()))
    for name, arch in archs.items():
        print(f"{name}: {arch.to_dict()}")


if __name__ == "__main__":
    main()

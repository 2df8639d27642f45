"""Side by side with whittle (PyPI ``whittle`` 0.6.0, on litgpt 0.5.12): same LLaMA-style GPT,
same weights, same sub-networks.

Runs in ``bench/.whittle-env`` (``bash bench/whittle_reference/setup.sh``). The supernet is
``llama_whittle`` (:func:`bench_space`: 6 layers, width 96, 6 query heads of 16 in 3
key/value groups, SwiGLU, RMSNorm, rotary) or another llama-family ``--space`` (e.g.
``llama_tiny``), trained ``--train-epochs`` on the embedded pydoc corpus or left at its
initial weights; its weights are copied into a whittle ``GPT`` of the same litgpt config.
Prints:

1. **Outputs** — max |logits ours − whittle's| for the largest and ``--archs`` random subnets
   (one head count and MLP width for all layers, which whittle's ``set_sub_network`` takes as
   ints), float32; goal <= 1e-5.
2. **Step time** — one training step (forward, cross entropy, backward) of the supernet with a
   subnet active, ours and whittle's, medians of ``--repeats`` interleaved repeats, and the
   ratio ours / whittle's.
3. With ``--search-budget N``: hypervolume of (val loss, params) after N evaluations with each
   tool's default multi-objective searcher (``whittle_reference/search.py``).

Usage:
    bench/.whittle-env/bin/python bench/bench_whittle.py [--archs 20] [--batch 8]
        [--seq-len 128] [--repeats 20] [--threads 1] [--train-epochs 2 --search-budget 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import nas
from nas.space import ArchConfig
from search_spaces.hf_export import _ungroup
from search_spaces.transformer_registry import register_transformer
from search_spaces.transformer_space import TransformerSize, transformer_space
from search_spaces.transformer_stack import blocks_of


def bench_space() -> Any:
    """``llama_whittle``: 6 layers, width 96, 6 query heads of 16 in 3 key/value groups,
    SwiGLU 264; 240 sub-networks whose layers share heads and MLP ratio."""
    size = TransformerSize(layers=6, heads=6, embed_dim=96, mlp_ratio=2.75, head_dim=16,
                           kv_heads=3)
    return transformer_space("llama_whittle", "llama", size, depth=[2, 3, 4, 5],
                             heads=[2, 4], embed_dim=[48, 64, 80], mlp_ratio=[1.0, 1.5, 2.0],
                             max_positions=256, seq_len=128)


register_transformer("llama_whittle", bench_space, description="bench_whittle.py's space")


def whittle_model(supernet: Any) -> Any:
    """A whittle ``GPT`` of the supernet's largest size, with the supernet's weights."""
    from litgpt import Config
    from whittle.models.gpt import GPT

    plan = supernet.plan
    config = Config(
        name="ofa-nas-llama", n_layer=plan.max_depth, n_embd=plan.max_width,
        n_head=plan.max_groups * plan.heads_per_group, n_query_groups=plan.max_groups,
        head_size=plan.head_dim, intermediate_size=plan.max_hidden,
        vocab_size=supernet.num_classes, padded_vocab_size=supernet.num_classes,
        block_size=plan.max_positions, bias=False, norm_class_name="RMSNorm",
        mlp_class_name="LLaMAMLP", rotary_percentage=1.0, parallel_residual=False,
        norm_eps=plan.norm_eps, rope_base=int(plan.rope_base))
    model = GPT(config)
    state = {"transformer.wte.weight": supernet.embed.weight,
             "lm_head.weight": supernet.head.weight,
             "transformer.ln_f.weight": supernet.norm.weight}
    for i, block in enumerate(blocks_of(supernet.blocks, active_only=False)):
        p = f"transformer.h.{i}."
        q, k, v = _ungroup(block.attn.qkv.weight, plan.max_groups, plan.heads_per_group)
        state |= {p + "norm_1.weight": block.norm1.weight, p + "norm_2.weight": block.norm2.weight,
                  p + "attn.qkv.weight": torch.cat([q, k, v]),
                  p + "attn.proj.weight": block.attn.proj.weight,
                  p + "mlp.fc_1.weight": block.mlp.gate.weight,
                  p + "mlp.fc_2.weight": block.mlp.up.weight,
                  p + "mlp.proj.weight": block.mlp.down.weight}
    missing = set(model.state_dict()) - set(state)
    assert not missing, f"not copied: {sorted(missing)[:5]}"
    model.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=False)
    return model


def set_whittle(model: Any, supernet: Any, arch: ArchConfig) -> None:
    shape = supernet.plan.shape(arch)
    layer = shape.layers[0]
    model.set_sub_network(
        sub_network_n_embd=shape.width, sub_network_intermediate_size=layer.hidden,
        sub_network_num_heads=layer.heads, sub_network_n_layers=len(shape.layers),
        sub_network_query_groups=layer.groups, sub_network_head_size=supernet.plan.head_dim)


def uniform_arch(space: Any, rng: np.random.Generator) -> ArchConfig:
    """A random arch with one head count and MLP ratio for all layers."""
    values = space.largest().to_dict()
    heads, ratio = rng.choice(space["l0.heads"].values), rng.choice(space["l0.mlp_ratio"].values)
    values["depth"] = int(rng.choice(space["depth"].values))
    values["embed_dim"] = int(rng.choice(space["embed_dim"].values))
    for name in values:
        if name.endswith(".heads"):
            values[name] = int(heads)
        elif name.endswith(".mlp_ratio"):
            values[name] = float(ratio)
    return space.arch(values)


def step_time(forward: Any, params: list[torch.Tensor], ids: torch.Tensor) -> float:
    started = time.perf_counter()
    logits = forward(ids)
    loss = F.cross_entropy(logits.flatten(0, 1), ids.flatten())
    loss.backward()
    for p in params:
        p.grad = None
    return time.perf_counter() - started


def trained_supernet(args: argparse.Namespace, tmp: Path) -> Any:
    """The space's supernet trained ``--train-epochs`` on pydoc (sandwich, AdamW), or fresh."""
    torch.manual_seed(0)
    if args.train_epochs == 0:
        return nas.create_supernet(args.space, num_classes=256).eval()
    from nas.flow import load_supernet, train
    from nas.tasks import DataSpec
    from nas.train import TrainConfig

    config = TrainConfig(epochs=args.train_epochs, batch_size=32, lr=3e-3, optimizer="adamw",
                         label_smoothing=0.0, eval_bn_batches=0, eval_max_batches=2)
    started = time.perf_counter()
    train(tmp / "run", args.space, data=DataSpec(data="pydoc", seq_len=64, limit=args.limit),
          config=config)
    print(f"trained {args.space} for {args.train_epochs} epoch(s) in "
          f"{time.perf_counter() - started:.0f} s")
    return load_supernet(tmp / "run")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="llama_whittle", help="a llama-family space")
    p.add_argument("--archs", type=int, default=20)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--repeats", type=int, default=20)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--train-epochs", type=int, default=0,
                   help="train the supernet first (0: random weights; the search needs > 0)")
    p.add_argument("--limit", type=int, default=3000, help="pydoc windows for training")
    p.add_argument("--search-budget", type=int, default=0,
                   help="evaluations per tool for the hypervolume comparison (0: skip)")
    p.add_argument("--search-seeds", type=int, default=3, help="searches per tool")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        supernet = trained_supernet(args, Path(tmp))
    model = whittle_model(supernet).eval()
    compare_outputs(supernet, model, args)
    compare_step_time(supernet, model, args)
    if args.search_budget:
        from whittle_reference.search import compare_search

        compare_search(supernet, model, args.search_budget, args.search_seeds)


def compare_outputs(supernet: Any, model: Any, args: argparse.Namespace) -> None:
    space = supernet.space
    rng = np.random.default_rng(0)
    archs = [space.largest(), *[uniform_arch(space, rng) for _ in range(args.archs)]]
    ids = torch.randint(0, 256, (2, 64), generator=torch.Generator().manual_seed(1))
    worst = 0.0
    with torch.no_grad():
        for arch in archs:
            supernet.set_active(arch)
            set_whittle(model, supernet, arch)
            worst = max(worst, float((supernet(ids) - model(ids)).abs().max()))
    print(f"max |logits ours - whittle| over {len(archs)} subnets: {worst:.3g} (goal <= 1e-5)")


def compare_step_time(supernet: Any, model: Any, args: argparse.Namespace) -> None:
    space = supernet.space
    x = torch.randint(0, 256, (args.batch, args.seq_len))
    supernet.train()
    model.train()
    print(f"\ntraining step, batch {args.batch} x {args.seq_len} tokens, {args.threads} thread(s)")
    print(f"{'subnet':<10}{'ours ms':>10}{'whittle ms':>12}{'ratio':>8}")
    for name, arch in (("largest", space.largest()), ("smallest", space.smallest())):
        supernet.set_active(arch)
        set_whittle(model, supernet, arch)
        ours, theirs = [], []
        for _ in range(args.repeats):  # interleaved: a busy machine disturbs both alike
            ours.append(step_time(supernet, list(supernet.parameters()), x))
            theirs.append(step_time(model, list(model.parameters()), x))
        a, b = statistics.median(ours[1:]), statistics.median(theirs[1:])
        print(f"{name:<10}{1e3 * a:>10.2f}{1e3 * b:>12.2f}{a / b:>8.2f}")


if __name__ == "__main__":
    main()

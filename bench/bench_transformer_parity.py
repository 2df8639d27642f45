"""Transformer supernets: parity with Hugging Face / timm, supernet == extract, step speed.

Prints three tables:

1. **Parity** — reference models built from their configs with random weights (nothing is
   downloaded), their weights loaded into our supernet (``search_spaces.hf_import``,
   ``search_spaces.timm_import``), the largest subnet active, float32: max |logits diff| and
   parameter counts (reference, ours, ``nas.count``). Rows whose library is missing say so.
   timm runs in a subprocess with a torchvision stand-in (``bench_transformer_reference.py``).
2. **Equivalence** — max |supernet(x) − extract(arch)(x)| over random archs of each space.
3. **Speed** — one training step (forward + backward of cross entropy) of the supernet with an
   arch active against the extracted static subnet, for the smallest, middle and largest arch;
   medians of interleaved repeats (and the ratio of the fastest repeats, which a machine shared
   with other work disturbs less); the ratio's goal is <= 1.05. ``--compare-narrow`` adds
   the supernet slicing with chained ``narrow`` (``nas.elastic.slicing.set_fast_slicing``
   off), the before/after reference, in the same interleaved loop.

Usage:
    .venv/bin/python bench/bench_transformer_parity.py [--archs 100] [--full]
        [--speed-spaces vit_mini,gpt_tiny] [--batch 16] [--seq-len 128] [--device cpu]
        [--compare-narrow] [--clock wall|thread]
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import nas  # noqa: E402
from nas.elastic.slicing import set_fast_slicing  # noqa: E402
from nas.space import ArchConfig, SearchSpace  # noqa: E402
from nas.supernet import Supernet  # noqa: E402
from search_spaces.transformer_layers import layer_specs  # noqa: E402

Row = dict[str, Any]


def _params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _counted(space: SearchSpace, classes: int) -> int:
    return sum(s.params() for s in layer_specs(space, space.largest(), classes))


def _hf_row(label: str, config: Any, seq_len: int) -> Row:
    import transformers

    from search_spaces.decoder_net import DecoderSupernet
    from search_spaces.hf_import import hf_space, load_hf

    torch.manual_seed(0)
    cls = transformers.GPT2LMHeadModel if config.model_type == "gpt2" else (
        transformers.LlamaForCausalLM)
    reference = cls(config).eval()
    supernet = DecoderSupernet(hf_space(config, "bench_hf"), num_classes=config.vocab_size).eval()
    load_hf(supernet, reference)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, config.vocab_size, (2, seq_len), generator=generator)
    with torch.no_grad():
        diff = float((reference(ids).logits - supernet(ids)).abs().max())
    return {"reference": label, "max_abs_diff": diff, "params_ref": _params(reference),
            "params_ours": _params(supernet), "params_counted": _counted(supernet.space,
                                                                         config.vocab_size)}


def _timm_row(label: str, timm_name: str, space: str) -> Row:
    from search_spaces.timm_import import load_timm_vit

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "ref.pt"
        subprocess.run([sys.executable, str(HERE / "bench_transformer_reference.py"), "timm",
                        timm_name, str(out)], check=True)
        ref = torch.load(out, weights_only=True)
    supernet = nas.create_supernet(space, num_classes=1000).eval()
    load_timm_vit(supernet, ref["state_dict"])  # type: ignore[arg-type]
    with torch.no_grad():
        diff = float((supernet(ref["input"]) - ref["output"]).abs().max())
    return {"reference": label, "max_abs_diff": diff, "params_ref": int(ref["params"]),
            "params_ours": _params(supernet), "params_counted": _counted(supernet.space, 1000)}


def parity_rows(full: bool) -> list[Row]:
    """Parity against every reference whose library is installed (GPT-2 small with ``full``)."""
    rows: list[Row] = []
    if importlib.util.find_spec("transformers") is None:
        rows.append({"reference": "transformers GPT-2 / LLaMA", "max_abs_diff": "not installed"})
    else:
        import transformers

        rows.append(_hf_row("HF GPT2LMHeadModel 4L x 128", transformers.GPT2Config(
            n_layer=4, n_embd=128, n_head=4, vocab_size=512, n_positions=128), 64))
        rows.append(_hf_row("HF LlamaForCausalLM 4L x 128 GQA 8/2", transformers.LlamaConfig(
            vocab_size=512, hidden_size=128, intermediate_size=344, num_hidden_layers=4,
            num_attention_heads=8, num_key_value_heads=2, max_position_embeddings=128), 64))
        if full:
            rows.append(_hf_row("HF GPT-2 small (124M)", transformers.GPT2Config(), 128))
    if importlib.util.find_spec("timm") is None:
        rows.append({"reference": "timm DeiT-Ti / ViT-S/16", "max_abs_diff": "not installed"})
    else:
        rows.append(_timm_row("timm deit_tiny_patch16_224", "deit_tiny_patch16_224", "vit_ti16"))
        if full:
            rows.append(_timm_row("timm vit_small_patch16_224", "vit_small_patch16_224",
                                  "vit_s16"))
    return rows


def _input(supernet: Supernet, batch: int, seq_len: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    meta = supernet.space.meta
    if meta["family"] == "vit":
        r = int(meta["resolution"])
        return torch.randn(batch, 3, r, r, generator=gen).to(device)
    return torch.randint(0, supernet.num_classes, (batch, seq_len), generator=gen).to(device)


def _classes(name: str) -> int:
    family = nas.create_space(name).meta["family"]
    if family == "vit":
        return 10 if name == "vit_mini" else 1000
    return 50257 if name == "gpt2_small" else 256


def equivalence_rows(spaces: list[str], n_archs: int) -> list[Row]:
    """Worst supernet-vs-extract difference over ``n_archs`` random archs per space."""
    rows = []
    for name in spaces:
        torch.manual_seed(0)
        supernet = nas.create_supernet(name, num_classes=_classes(name)).eval()
        x = _input(supernet, 2, 32, "cpu")
        worst = 0.0
        with torch.no_grad():
            for arch in supernet.space.sample_many(n_archs, np.random.default_rng(0)):
                supernet.set_active(arch)
                worst = max(worst, float((supernet(x) - supernet.extract(arch)(x)).abs().max()))
        rows.append({"space": name, "archs": n_archs, "max_abs_diff": worst})
    return rows


def middle(space: SearchSpace) -> ArchConfig:
    """Every dimension at its middle value."""
    return space.from_indices([len(c.values) // 2 for c in space.choices])


def _step(model: nn.Module, x: torch.Tensor, amp: bool, fast: bool = True
          ) -> Callable[[], None]:
    def run() -> None:
        set_fast_slicing(fast)
        model.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=amp):
            logits = model(x)
        target = torch.zeros(logits.shape[:-1], dtype=torch.long, device=x.device)
        F.cross_entropy(logits.float().flatten(0, -2), target.flatten()).backward()
    return run


def _time(fn: Callable[[], None], device: str, clock: str = "wall") -> float:
    """Seconds ``fn`` takes: wall clock, or (``clock="thread"``, CPU with one thread) this
    thread's CPU time, which leaves out the time other processes hold the core."""
    now = time.thread_time if clock == "thread" else time.perf_counter
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = now()
    fn()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return now() - start


def speed_rows(spaces: list[str], args: argparse.Namespace) -> list[Row]:
    """Training-step time of supernet (arch active) vs extracted subnet, interleaved."""
    rows = []
    for name in spaces:
        supernet = nas.create_supernet(name, num_classes=_classes(name)).to(args.device).train()
        x = _input(supernet, args.batch, args.seq_len, args.device)
        space = supernet.space
        for label, arch in (("smallest", space.smallest()), ("middle", middle(space)),
                            ("largest", space.largest())):
            supernet.set_active(arch)
            static = supernet.extract(arch).train()
            steps = {"supernet": _step(supernet, x, args.amp),
                     "static": _step(static, x, args.amp)}
            if args.compare_narrow:  # the reference: one narrow (autograd node) per dimension
                steps["narrow"] = _step(supernet, x, args.amp, fast=False)
            times: dict[str, list[float]] = {k: [] for k in steps}
            for _ in range(args.warmup):
                for fn in steps.values():
                    fn()
            for _ in range(args.repeats):
                for key, fn in steps.items():
                    times[key].append(_time(fn, args.device, args.clock))
            set_fast_slicing(True)  # the default (each step sets its own)
            med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
            row: Row = {"space": name, "arch": label, "supernet_ms": round(med["supernet"], 3),
                        "static_ms": round(med["static"], 3),
                        "ratio": round(med["supernet"] / med["static"], 3),
                        "ratio_of_minima": round(min(times["supernet"]) / min(times["static"]),
                                                 3)}
            if args.compare_narrow:
                row["narrow_ms"] = round(med["narrow"], 3)
                row["narrow_ratio"] = round(med["narrow"] / med["static"], 3)
                row["narrow_ratio_of_minima"] = round(
                    min(times["narrow"]) / min(times["static"]), 3)
            rows.append(row)
    return rows


def _print(title: str, rows: list[Row]) -> None:
    print(f"\n## {title}\n")
    if not rows:
        return
    keys = list(dict.fromkeys(k for row in rows for k in row))
    print("| " + " | ".join(keys) + " |")
    print("|" + "---|" * len(keys))
    for row in rows:
        cells = [row.get(k, "") for k in keys]
        print("| " + " | ".join(f"{c:.3g}" if isinstance(c, float) else str(c)
                                for c in cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=100, help="random archs per space")
    parser.add_argument("--full", action="store_true", help="add GPT-2 small and ViT-S/16")
    parser.add_argument("--skip-parity", action="store_true")
    parser.add_argument("--equivalence-spaces", default="gpt_tiny,llama_tiny,vit_mini")
    parser.add_argument("--speed-spaces", default="vit_mini,gpt_tiny")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true", help="bf16 autocast (CUDA)")
    parser.add_argument("--clock", choices=("wall", "thread"), default="wall",
                        help="wall clock, or this thread's CPU time (CPU, --threads 1: steadier "
                             "on a machine shared with other work)")
    parser.add_argument("--compare-narrow", action="store_true",
                        help="also time the supernet slicing with chained narrow (one view "
                             "and autograd node per sliced dimension), interleaved")
    args = parser.parse_args(argv)
    if args.clock == "thread" and (args.device != "cpu" or args.threads != 1):
        parser.error("--clock thread needs --device cpu and --threads 1")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, device {args.device}, {args.threads} thread(s)")
    if not args.skip_parity:
        _print("Parity (float32, largest subnet, random weights)", parity_rows(args.full))
    spaces = [s for s in args.equivalence_spaces.split(",") if s]
    _print("Equivalence: supernet vs extract", equivalence_rows(spaces, args.archs))
    speed = [s for s in args.speed_spaces.split(",") if s]
    _print(f"Training step (forward + backward), batch {args.batch}, seq_len {args.seq_len} "
           "(LMs)", speed_rows(speed, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())

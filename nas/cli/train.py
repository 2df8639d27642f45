"""``nas train``: train a supernet (sandwich or progressive shrinking) into ``runs/<name>/``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from nas.cli import UsageError

EXAMPLE = """\
example:
  nas train --space tiny --data digits --epochs 5 --run tiny-digits
  nas train --space tiny --data ../shared/data/images/mnist_png.zip --limit 6000 \\
      --schedule progressive --epochs 8 --run tiny-mnist
  nas train --space tiny --data digits --run tiny-digits --resume     # after Ctrl-C or a crash
  nas train --space vit_mini --data digits --schedule sorted --num-nested 4 --run vit-sorted
  nas train --space gpt_tiny --data pydoc --seq-len 64 --limit 2000 --epochs 1 --run gpt
  nas train --space tiny+q8-32b --data digits --quantization-aware --run tiny-qat
  nas train --from-hf models/my-gpt2 --teacher initial --data corpus.txt --run ft
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    p = sub.add_parser(
        "train",
        help="train a weight-shared supernet",
        description=(
            "Train a supernet with the sandwich rule (largest + N random + smallest per step, "
            "in-place distillation), SortedNet's nested sub-models or Once-for-All progressive "
            "shrinking. Checkpoints are written atomically; Ctrl-C saves one; --resume continues "
            "exactly. The optimizer, learning rate, weight decay and label smoothing you leave "
            "out are the task's: SGD lr 0.05 label smoothing 0.1 for image classification, "
            "AdamW lr 3e-3 weight decay 0.01 label smoothing 0 for language models; "
            "supernet/config.json records the values used."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--space",
                        help="registered search space (see 'nas spaces'), or MODULE:NAME for a "
                        "space your own module registers")
    source.add_argument("--from-hf", metavar="PATH",
                        help="a Hugging Face GPT-2/LLaMA/Mistral save_pretrained folder: its "
                        "supernet (largest = the model, weights loaded) is trained; the run "
                        "records the space's recipe for later verbs")
    p.add_argument("--hf-exportable", action="store_true",
                   help="with --from-hf: one head count and MLP width for all layers, so every "
                   "subnet exports with --format hf")
    p.add_argument("--teacher", choices=("inplace", "initial"), default="inplace",
                   help="initial: a frozen copy of the starting network (the imported model) "
                   "teaches every subnet; inplace (default): the largest subnet does")
    p.add_argument("--data", default="digits",
                   help="'digits' (embedded) or a folder/.zip laid out as split/class/image; "
                   "for language models 'pydoc' (embedded) or a .txt file or folder")
    p.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                   help="a build option of the supernet beyond the space (e.g. NAS-Bench-201's "
                   "channels=8, cells_per_stage=1, resolution=16); repeatable, recorded")
    _add_schedule_arguments(p)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use a random subset of N examples")
    p.add_argument("--seq-len", type=int, default=None,
                   help="tokens per example (language models; default 64)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="held out for validation")
    p.add_argument(
        "--val-split",
        default=None,
        help="validate on this split of an image folder (e.g. 'test') instead of a held-out part",
    )
    p.add_argument("--run", default=None, help="run name (default: <space>-<schedule>)")
    p.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    p.add_argument("--resume", action="store_true", help="continue the run from its checkpoint")
    p.add_argument("--workers", type=int, default=1, help="data-parallel Ray Train workers")
    p.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    p.add_argument("--amp", action="store_true", help="mixed precision")
    p.add_argument("--threads", type=int, default=None, help="torch threads (per worker)")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between checkpoints")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(handler=run)


def _add_schedule_arguments(p: argparse.ArgumentParser) -> None:
    """The schedule, its sub-model counts and its main hyper-parameters."""
    p.add_argument("--epochs", type=int, default=5, help="total epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step and worker")
    p.add_argument("--optimizer", choices=("sgd", "adamw"), default=None,
                   help="default: the task's, SGD (Nesterov) for classification, AdamW for "
                   "language models")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: the task's, 0.05 for classification, "
                   "3e-3 for language models)")
    p.add_argument("--weight-decay", type=float, default=None,
                   help="on weights, not norms or biases (default: the task's, 3e-5 for "
                   "classification, 0.01 for language models)")
    p.add_argument("--label-smoothing", type=float, default=None,
                   help="of the cross-entropy (default: the task's, 0.1 for classification, "
                   "0 for language models)")
    p.add_argument("--schedule", choices=("sandwich", "progressive", "sorted"),
                   default="sandwich", help="sorted: SortedNet, --num-nested nested sub-models "
                   "per step, the largest included")
    p.add_argument("--num-random", type=int, default=2, help="random subnets per sandwich step")
    p.add_argument("--num-nested", type=int, default=4,
                   help="nested sub-models per sorted step, the largest included (default 4)")
    p.add_argument("--kd-ratio", type=float, default=1.0,
                   help="weight of in-place distillation from the largest (0: off; default 1)")
    p.add_argument("--quantization-aware", action="store_true",
                   help="quantization-aware training (a space with a policy, e.g. tiny+q8-32b): "
                   "each subnet trains fake-quantized by its policy, straight-through "
                   "gradients; the largest, the in-place teacher, stays float")
    p.add_argument("--largest-weight", type=float, default=1.0,
                   help="sandwich/sorted: weight of the largest subnet's loss, the others "
                   "weighing 1 (default 1; 4 trains the largest nearly as fast as alone)")
    p.add_argument("--sampling", choices=("uniform", "balanced"), default="uniform",
                   help="sandwich: how the random subnets draw each dimension; balanced: so "
                   "that, with the largest and smallest, every value is trained equally often "
                   "(default uniform)")


def run(args: argparse.Namespace) -> int:
    from nas.flow import train
    from nas.registry import resolve_space
    from nas.tasks import DataSpec
    from nas.train import TrainConfig

    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    imported = _import(args)
    space = imported.space if imported else resolve_space(args.space)
    from nas.sequence import is_sequence_space

    if args.seq_len is not None and not is_sequence_space(space):
        raise UsageError(f"--seq-len does nothing for space {space.name!r}: its networks read "
                         "images, not token sequences")
    if args.quantization_aware:
        from nas.quantization.qat import check_space

        check_space(space)  # before the run directory is written
    config = TrainConfig(
        schedule=args.schedule, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        optimizer=args.optimizer, weight_decay=args.weight_decay,
        label_smoothing=args.label_smoothing, num_random=args.num_random,
        num_nested=args.num_nested, kd_ratio=args.kd_ratio, largest_weight=args.largest_weight,
        sampling=args.sampling, seed=args.seed, device=args.device, amp=args.amp,
        teacher=args.teacher,
        checkpoint_every=args.checkpoint_every, quantization_aware=args.quantization_aware,
    )
    data = DataSpec(data=args.data, limit=args.limit, seed=args.seed,
                    val_fraction=args.val_fraction, val_split=args.val_split,
                    seq_len=args.seq_len)
    if args.threads is not None:
        import torch

        torch.set_num_threads(args.threads)
    run_dir = Path(args.runs_dir) / (args.run or f"{space.name}-{args.schedule}")
    from nas.cli.runs import check_new_run

    check_new_run(run_dir)
    bar = _Bar(disable=args.json)
    try:
        result = train(run_dir, space, data=data, config=config, resume=args.resume,
                       supernet_options=_options(args.option, imported),
                       initial_state=imported.state if imported else None,
                       workers=args.workers, threads_per_worker=args.threads or 1,
                       progress=bar.update)
    except KeyboardInterrupt:
        bar.close()
        print(f"nas train: interrupted; checkpoint saved in {run_dir}/supernet/ "
              "(continue with the same command and --resume)", file=sys.stderr)
        return 130
    finally:
        bar.close()
    _print_result(result, space, args.json)
    return 0


def _import(args: argparse.Namespace) -> Any:
    """The imported model of ``--from-hf`` (``None`` without it)."""
    if args.hf_exportable and not args.from_hf:
        raise UsageError("--hf-exportable needs --from-hf")
    if not args.from_hf:
        return None
    from nas.importers import import_model

    return import_model("hf", args.from_hf, exportable=args.hf_exportable)


def _options(items: list[str], imported: Any = None) -> dict[str, Any]:
    """``KEY=VALUE`` items as a dict (values parsed as JSON where they are, else strings);
    an imported model's vocabulary as ``num_classes``."""
    out: dict[str, Any] = {} if imported is None else {"num_classes": imported.num_classes}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--option {item!r}: expected KEY=VALUE, e.g. channels=8")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


class _Bar:
    """A tqdm bar fed by the training progress callback: step, loss, images/s, ETA."""

    def __init__(self, *, disable: bool) -> None:
        self.disable = disable
        self.bar: Any = None

    def update(self, p: Any) -> None:
        if self.disable:
            return
        if self.bar is None:
            from nas.cli.progress import progress_bar

            self.bar = progress_bar(total=p.total_steps, initial=p.step - 1, unit="step")
        self.bar.set_postfix_str(
            f"epoch {p.epoch} {p.phase} loss {p.loss:.3f} {p.images_per_second:.0f} img/s",
            refresh=False,
        )
        self.bar.update(p.step - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _print_result(result: Any, space: Any, as_json: bool) -> None:
    from nas.evaluation import reference_archs
    from nas.tasks import task_for_space

    refs, metric = reference_archs(space), task_for_space(space).metric
    rows = [
        {"subnet": name, "arch": refs[name].key, metric: m.get(metric), "loss": m.get("loss")}
        for name, m in result.final.items()
    ]
    if as_json:
        print(
            json.dumps(
                {
                    "run_dir": str(result.run_dir),
                    "steps": result.steps,
                    "epochs": result.epochs,
                    "subnets": rows,
                    "history": result.history,
                },
                indent=2,
            )
        )
        return
    print(f"run {result.run_dir}: {result.epochs} epochs, {result.steps} steps")
    print(f"{'subnet':<10}{'arch':<14}{'val ' + metric:>14}{'val loss':>10}")
    for r in rows:
        loss = "" if r["loss"] is None else f"{r['loss']:.4f}"
        print(f"{r['subnet']:<10}{r['arch']:<14}{r[metric]:>14.2f}{loss:>10}")

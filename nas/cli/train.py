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
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train`` verb."""
    p = sub.add_parser(
        "train",
        help="train a weight-shared supernet",
        description=(
            "Train a supernet with the sandwich rule (largest + N random + smallest per step, "
            "in-place distillation) or Once-for-All progressive shrinking. Checkpoints are "
            "written atomically; Ctrl-C saves one; --resume continues exactly."
        ),
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--space", required=True, help="registered search space (see 'nas spaces')")
    p.add_argument(
        "--data",
        default="digits",
        help="'digits' (embedded) or a folder/.zip laid out as split/class/image",
    )
    p.add_argument("--schedule", choices=("sandwich", "progressive"), default="sandwich")
    p.add_argument("--epochs", type=int, default=5, help="total epochs (default 5)")
    p.add_argument("--batch-size", type=int, default=64, help="images per step and worker")
    p.add_argument("--lr", type=float, default=0.05, help="peak learning rate")
    p.add_argument("--num-random", type=int, default=2, help="random subnets per sandwich step")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use a random subset of N images")
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


def _load(args: argparse.Namespace) -> tuple[Any, Any]:
    from nas.data import load_data, split

    data = load_data(args.data, split="train", limit=args.limit, seed=args.seed)
    if args.val_split is None:
        return split(data, args.val_fraction, seed=args.seed)
    if args.data == "digits":
        raise UsageError("--val-split needs an image folder; digits has no splits")
    return data, load_data(args.data, split=args.val_split, limit=args.limit, seed=args.seed)


def run(args: argparse.Namespace) -> int:
    import torch

    import nas
    from nas.train import TrainConfig, train_supernet

    if args.workers < 1:
        raise UsageError(f"--workers must be >= 1, got {args.workers}")
    if args.threads is not None:
        torch.set_num_threads(max(1, args.threads))
    config = TrainConfig(
        schedule=args.schedule,
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        num_random=args.num_random,
        seed=args.seed,
        device=args.device,
        amp=args.amp,
        checkpoint_every=args.checkpoint_every,
    )
    if args.data != "digits" and not Path(args.data).exists():
        raise UsageError(f"--data {args.data!r}: no such file or folder (or use 'digits')")
    run_dir = _prepare_run(args, nas.create_space(args.space))
    train, val = _load(args)
    torch.manual_seed(args.seed)
    supernet = nas.create_supernet(args.space, num_classes=train.num_classes)
    bar = _Bar(disable=args.json)
    try:
        if args.workers > 1:
            from nas.distributed.train import train_supernet_distributed

            result = train_supernet_distributed(
                supernet,
                train,
                val,
                config,
                run_dir,
                workers=args.workers,
                resume=args.resume,
                progress=bar.update,
                threads_per_worker=args.threads or 1,
            )
        else:
            result = train_supernet(
                supernet, train, val, config, run_dir, resume=args.resume, progress=bar.update
            )
    except KeyboardInterrupt:
        bar.close()
        print(
            f"nas train: interrupted; checkpoint saved in {run_dir.path}/supernet/ "
            "(continue with the same command and --resume)",
            file=sys.stderr,
        )
        return 130
    finally:
        bar.close()
    _print_result(result, supernet, args.json)
    return 0


def _prepare_run(args: argparse.Namespace, space: Any) -> Any:
    """The run directory; a resumed run must read the same data as before."""
    from nas.rundir import RunDir
    from nas.train import check_resume

    run = RunDir.create(Path(args.runs_dir) / (args.run or f"{args.space}-{args.schedule}"), space)
    check_resume(run.path, args.resume)
    data = {
        "data": args.data,
        "limit": args.limit,
        "seed": args.seed,
        "val_fraction": args.val_fraction,
        "val_split": args.val_split,
    }
    before = run.info().get("data")
    if args.resume and before is not None and before != data:
        raise UsageError(f"--resume: the run was trained on {before}, not {data}")
    if not args.resume:
        run.update_info(data=data)
    return run


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


def _print_result(result: Any, supernet: Any, as_json: bool) -> None:
    from nas.evaluation import reference_archs

    refs = reference_archs(supernet.space)
    rows = [
        {"subnet": name, "arch": refs[name].key, "top1": m.get("top1"), "loss": m.get("loss")}
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
    print(f"{'subnet':<10}{'arch':<14}{'val top-1 %':>12}{'val loss':>10}")
    for r in rows:
        loss = "" if r["loss"] is None else f"{r['loss']:.4f}"
        print(f"{r['subnet']:<10}{r['arch']:<14}{r['top1']:>12.2f}{loss:>10}")

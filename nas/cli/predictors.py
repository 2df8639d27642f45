"""``nas predictors collect|fit|list``: accuracy samples from a supernet, fitted predictors."""

from __future__ import annotations

import argparse
import json

from nas.cli import UsageError
from nas.cli.progress import progress_bar
from nas.cli.runs import resolve_run


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predictors`` verb and its sub-commands."""
    p = sub.add_parser(
        "predictors",
        help="collect accuracy samples and fit predictors in a run",
        description="Accuracy samples through the trained supernet, and predictors fitted on them.",
        epilog="example: nas predictors collect --run runs/tiny-digits --n 200",
    )
    verbs = p.add_subparsers(dest="predictors_verb", metavar="COMMAND")
    c = verbs.add_parser(
        "collect",
        help="evaluate N random subnets (BN recalibrated) on the run's validation data",
        epilog="example: nas predictors collect --run runs/tiny-digits --n 200 --seed 0",
    )
    c.add_argument("--run", required=True, help="run directory (made by 'nas train')")
    c.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    c.add_argument("--n", type=int, required=True, help="number of subnets (resumes up to N)")
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--bn-batches", type=int, default=20)
    c.add_argument("--batch-size", type=int, default=256)
    c.add_argument("--device", default="cpu")
    c.add_argument("--chunk", type=int, default=10, help="subnets evaluated between saves")
    c.set_defaults(handler=run_collect)
    f = verbs.add_parser(
        "fit",
        help="fit a predictor on the run's samples, write it and its cross-validated report",
        epilog="example: nas predictors fit --run runs/tiny-digits --predictor rf",
    )
    f.add_argument("--run", required=True, help="run directory (with samples)")
    f.add_argument("--runs-dir", default="runs", help="parent folder of runs (default runs/)")
    f.add_argument("--metric", default=None, help="the samples' metric (default: the task's)")
    f.add_argument("--predictor", default="rf", help="see 'nas predictors list' (default rf)")
    f.add_argument("--encoder", default=None, help="architecture encoding (default: the "
                   "predictor's own; see 'nas predictors list')")
    f.add_argument("--folds", type=int, default=5, help="cross-validation folds for the report")
    f.add_argument("--seed", type=int, default=0, help="fold assignment")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_fit)
    ls = verbs.add_parser(
        "list", help="list predictor names", epilog="example: nas predictors list"
    )
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    p.set_defaults(handler=lambda args: _no_command(p))


def _check_collect(args: argparse.Namespace) -> None:
    """The sizes and the device of ``collect``, before any work (one-line errors)."""
    for flag, value in (("--n", args.n), ("--batch-size", args.batch_size),
                        ("--chunk", args.chunk)):
        if value is not None and value < 1:
            raise UsageError(f"{flag} {value}: expected a positive int")
    if args.device is not None:
        check_device(args.device)


def _check_fit(args: argparse.Namespace) -> None:
    """The names ``fit`` is given, before any file is read (one-line errors)."""
    from predictors import ENCODERS

    if args.encoder is not None and args.encoder not in ENCODERS:
        raise UsageError(f"--encoder {args.encoder!r}: unknown; encoders are {list(ENCODERS)}")


def check_device(text: str) -> str:
    """``text`` if torch can parse it as a device (``cpu``, ``cuda:0``, ...)."""
    import torch

    try:
        torch.device(text)
    except (RuntimeError, ValueError):
        raise UsageError(f"--device {text!r}: not a torch device (e.g. cpu, cuda:1)") from None
    return text


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_collect(args: argparse.Namespace) -> int:
    from nas.flow import collect_samples

    run = resolve_run(args.run, args.runs_dir, writable=True)
    _check_collect(args)
    with progress_bar(total=args.n, desc="subnets", delay=1.0) as bar:

        def progress(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        samples = collect_samples(run, args.n, seed=args.seed, bn_batches=args.bn_batches,
                                  batch_size=args.batch_size, device=args.device,
                                  chunk=args.chunk, progress=progress)
    print(f"{len(samples.archs)} samples in {run.samples_csv(run.task.metric)}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from nas.flow import fit_predictor

    _check_fit(args)
    run = resolve_run(args.run, args.runs_dir, writable=True)
    report = fit_predictor(run, metric=args.metric, predictor=args.predictor,
                           encoder=args.encoder, folds=args.folds, seed=args.seed)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    else:
        cv = report.cv
        print(f"wrote {report.path}: {report.folds}-fold CV kendall_tau {cv['kendall_tau']:.3f}, "
              f"rmse {cv['rmse']:.3f} on {report.n} samples")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from nas.predictor import list_predictors
    from predictors import ENCODERS

    if args.json:
        print(json.dumps({"predictors": list_predictors(), "encoders": list(ENCODERS)}))
    else:
        print("predictors: " + ", ".join(list_predictors()))
        print("encoders:   " + ", ".join(ENCODERS))
    return 0

"""``nas predictors collect|fit|list``: accuracy samples from a supernet, fitted predictors."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from nas.cli import UsageError
from nas.cli.progress import progress_bar

SAMPLES = "accuracy.csv"


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``predictors`` verb and its sub-commands."""
    p = sub.add_parser(
        "predictors",
        help="collect accuracy samples and fit predictors in a run",
        description="Accuracy samples through the trained supernet, and predictors fitted on them.",
        epilog="example: nas predictors collect --run runs/tiny-sandwich --n 200",
    )
    verbs = p.add_subparsers(dest="predictors_verb", metavar="COMMAND")
    c = verbs.add_parser(
        "collect",
        help="evaluate N random subnets (BN recalibrated) on the run's validation data",
        epilog="example: nas predictors collect --run runs/tiny-sandwich --n 200 --seed 0",
    )
    c.add_argument("--run", required=True, help="run directory (made by 'nas train')")
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
        epilog="example: nas predictors fit --run runs/tiny-sandwich --predictor mlp",
    )
    f.add_argument("--run", required=True)
    f.add_argument("--predictor", default="mlp", help="see 'nas predictors list'")
    f.add_argument("--encoder", default="features")
    f.add_argument("--folds", type=int, default=5, help="cross-validation folds for the report")
    f.add_argument("--json", action="store_true")
    f.set_defaults(handler=run_fit)
    ls = verbs.add_parser(
        "list", help="list predictor names", epilog="example: nas predictors list"
    )
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=run_list)
    p.set_defaults(handler=lambda args: _no_command(p))


def _no_command(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def _open_run(path: str) -> Any:
    from nas.registry import create_space
    from nas.rundir import RunDir

    if not (Path(path) / "space.json").is_file():
        raise UsageError(f"--run {path!r}: not a run directory (no space.json)")
    return RunDir.open(path, create_space(RunDir.space_name(path)))


def _read_samples(run: Any) -> tuple[list[Any], list[dict[str, Any]]]:
    import pandas as pd

    path = run.path / "samples" / SAMPLES
    if not path.is_file():
        return [], []
    frame = pd.read_csv(path)
    archs = [run.space.from_json(text) for text in frame["arch"]]
    records = frame.to_dict("records")
    rows: list[dict[str, Any]] = [{str(k): v for k, v in r.items()} for r in records]
    return archs, rows


def run_collect(args: argparse.Namespace) -> int:
    import pandas as pd
    import torch

    import nas
    from nas.checkpoint import load_checkpoint
    from nas.data import load_data, split
    from nas.evaluation import evaluate
    from nas.rundir import atomic_write_text

    if args.n < 1:
        raise UsageError(f"--n must be >= 1, got {args.n}")
    run = _open_run(args.run)
    info = run.info().get("data")
    if not info:
        raise UsageError(f"{run.path}/run.json: field 'data' missing (train the run first)")
    data = load_data(info["data"], split="train", limit=info.get("limit"), seed=info["seed"])
    train: Any
    val: Any
    if info.get("val_split"):
        train = data
        val = load_data(info["data"], split=info["val_split"], limit=info.get("limit"),
                        seed=info["seed"])
    else:
        train, val = split(data, info["val_fraction"], seed=info["seed"])
    state = load_checkpoint(run.path / "supernet" / "checkpoint.pt", space=run.space)
    supernet: Any = nas.create_supernet(run.space.name, num_classes=data.num_classes)
    supernet.load_state_dict(state["model"])
    supernet.to(torch.device(args.device))
    archs = run.space.sample_many(args.n, np.random.default_rng(args.seed))
    _, rows = _read_samples(run)
    done = {r["arch_key"] for r in rows}
    todo = [a for a in archs if a.key not in done]
    path = run.path / "samples" / SAMPLES
    with progress_bar(total=len(archs), initial=len(archs) - len(todo), desc="subnets") as bar:
        for start in range(0, len(todo), args.chunk):
            chunk = todo[start : start + args.chunk]
            results = evaluate(supernet, chunk, val, bn_data=train, n_bn_batches=args.bn_batches,
                               batch_size=args.batch_size, device=args.device)
            for arch, res in zip(chunk, results):
                rows.append({"arch_key": arch.key, "arch": arch.to_json(),
                             "top1": res["top1"], "loss": res["loss"]})
            atomic_write_text(path, pd.DataFrame(rows).to_csv(index=False))
            bar.update(len(chunk))
    print(f"{len(rows)} samples in {path}")
    return 0


def run_fit(args: argparse.Namespace) -> int:
    from nas.rundir import atomic_write_json
    from predictors import create_predictor, save_predictor, scores

    run = _open_run(args.run)
    archs, rows = _read_samples(run)
    if len(archs) < max(10, args.folds):
        raise UsageError(
            f"{run.path}/samples/{SAMPLES}: {len(archs)} samples; collect at least "
            f"{max(10, args.folds)} with 'nas predictors collect'"
        )
    y = np.array([r["top1"] for r in rows], dtype=float)
    make = lambda: create_predictor(args.predictor, space=run.space, encoder=args.encoder)  # noqa: E731
    X = make().encode(archs)
    folds = np.random.default_rng(0).permutation(len(y)) % args.folds
    pred = np.zeros(len(y))
    for f in range(args.folds):
        p = make().fit_features(X[folds != f], y[folds != f])
        pred[folds == f] = p.predict_features(X[folds == f])
    report = {"predictor": args.predictor, "encoder": args.encoder, "n": len(y),
              "folds": args.folds, "cv": scores(y, pred)}
    final = make().fit_features(X, y)
    out = save_predictor(final, run.subdir("predictors") / "accuracy")
    atomic_write_json(run.path / "predictors" / "accuracy_report.json", report)
    if args.json:
        print(json.dumps({**report, "path": str(out)}, indent=2))
    else:
        cv = report["cv"]
        print(f"wrote {out}: {args.folds}-fold CV kendall_tau {cv['kendall_tau']:.3f}, "
              f"rmse {cv['rmse']:.3f} on {len(y)} samples")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from predictors import ENCODERS, list_predictors

    if args.json:
        print(json.dumps({"predictors": list_predictors(), "encoders": list(ENCODERS)}))
    else:
        print("predictors: " + ", ".join(list_predictors()))
        print("encoders:   " + ", ".join(ENCODERS))
    return 0

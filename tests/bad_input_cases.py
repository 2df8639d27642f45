"""Bad command lines for ``nas``, shared by tests/test_bad_input.py and bench/bench_bad_input.py.

Each case is ``(id, argv, expected)``: ``argv`` may hold ``{name}`` placeholders that
:func:`make_inputs` fills (a tiny run, a directory, a binary file, ...); ``expected`` is a
substring the single stderr line must contain (case-insensitive). :data:`SLOW_CASES` take
seconds each (a dead port waits 5 s; some verbs load torch models first).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

LONG = "x" * 300  # longer than any file name the file system allows
S = ["search", "--run", "{run}", "--profiles", "tiny_fast", "--sequential"]
T = ["train", "--space", "tiny", "--runs-dir", "{tmp}", "--run", "t1", "--limit", "160"]
C = ["predictors", "collect", "--run", "{run}"]
F = ["predictors", "fit", "--run", "{run}"]
B = ["profile", "build", "--space", "tiny", "--name", "pb", "--out", "{tmp}"]
I = ["profile", "import", "--name", "pi", "--out", "{tmp}", "--source", "test",  # noqa: E741
     "--licence", "CC0"]
ST = ["stats", "--space", "tiny", "--archs"]

CASES: list[tuple[str, list[str], str]] = [
    ("unknown-verb", ["bogus"], "invalid choice"),
    ("unknown-option", ["search", "--run", "r", "--profiles", "p", "--bogus"], "--bogus"),
    # ---------------------------------------------------------------- search
    ("search-no-run", ["search", "--profiles", "tiny_fast"], "--run"),
    ("search-run-missing", ["search", "--run", "{tmp}/nope", "--profiles", "a"], "--run"),
    ("search-run-is-file", ["search", "--run", "{bin}", "--profiles", "a"], "--run"),
    ("search-run-plain-dir", ["search", "--run", "{dir}", "--profiles", "a"], "--run"),
    ("search-run-name-too-long", ["search", "--run", LONG, "--profiles", "a"], "--run"),
    ("search-budget-0", [*S, "--budget", "0"], "budget"),
    ("search-budget-negative", [*S, "--budget", "-3"], "budget"),
    ("search-budget-text", [*S, "--budget", "many"], "--budget"),
    ("search-budget-float", [*S, "--budget", "2.5"], "--budget"),
    ("search-batch-0", [*S, "--batch-size", "0"], "batch"),
    ("search-batch-negative", [*S, "--batch-size", "-1"], "batch"),
    ("search-unknown-searcher", [*S, "--searcher", "genetic"], "--searcher"),
    ("search-empty-profiles", ["search", "--run", "{run}", "--profiles", ","], "--profiles"),
    ("search-unknown-profile", ["search", "--run", "{run}", "--profiles", "no_such_device"],
     "no_such_device"),
    ("search-profile-repeated",
     ["search", "--run", "{run}", "--profiles", "tiny_fast,tiny_fast"], "tiny_fast"),
    ("search-profile-no-model", ["search", "--run", "{run}", "--profiles", "other_space"],
     "other_space"),
    ("search-profile-malformed", ["search", "--run", "{run}", "--profiles", "broken"],
     "broken"),
    ("search-profile-name-too-long", ["search", "--run", "{run}", "--profiles", LONG],
     "profile"),
    ("search-profile-bad-chars", ["search", "--run", "{run}", "--profiles", "../x"], "profile"),
    ("search-max-latency-negative", [*S, "--max-latency", "-1"], "--max-latency"),
    ("search-max-latency-zero", [*S, "--max-latency", "0"], "--max-latency"),
    ("search-max-latency-nan", [*S, "--max-latency", "nan"], "--max-latency"),
    ("search-max-latency-inf", [*S, "--max-latency", "inf"], "--max-latency"),
    ("search-max-latency-text", [*S, "--max-latency", "fast"], "--max-latency"),
    ("search-max-latency-for-garbage", [*S, "--max-latency-for", "garbage"],
     "--max-latency-for"),
    ("search-max-latency-for-other-profile", [*S, "--max-latency-for", "nope=3"], "nope"),
    ("search-max-latency-for-bad-number", [*S, "--max-latency-for", "tiny_fast=abc"],
     "--max-latency-for"),
    ("search-quantile-above-1", [*S, "--latency-quantile", "1.5"], "--latency-quantile"),
    ("search-quantile-negative", [*S, "--latency-quantile", "-0.1"], "--latency-quantile"),
    ("search-quantile-nan", [*S, "--latency-quantile", "nan"], "--latency-quantile"),
    ("search-quantile-zero", [*S, "--latency-quantile", "0"], "--latency-quantile"),
    ("search-quantile-text", [*S, "--latency-quantile", "half"], "--latency-quantile"),
    ("search-max-macs-bad-suffix", [*S, "--max-macs", "3X"], "--max-macs"),
    ("search-max-macs-negative", [*S, "--max-macs", "-5"], "--max-macs"),
    ("search-max-params-nan", [*S, "--max-params", "nan"], "--max-params"),
    ("search-images-0", [*S, "--images", "0"], "--images"),
    ("search-bn-batches-negative", [*S, "--bn-batches", "-1"], "--bn-batches"),
    ("search-export-top-negative", [*S, "--export-top", "-2"], "--export-top"),
    ("search-unknown-format", [*S, "--formats", "pdf"], "pdf"),
    ("search-address-with-sequential", [*S, "--address", "127.0.0.1:6379"], "--address"),
    ("search-address-no-port", ["search", "--run", "{run}", "--profiles", "tiny_fast",
                                "--address", "localhost"], "address"),
    ("search-accuracy-predicted-no-predictor", [*S, "--accuracy", "predicted"], "predictor"),
    ("search-accuracy-bad", [*S, "--accuracy", "guessed"], "--accuracy"),
    ("search-seed-negative", [*S, "--seed", "-1"], "--seed"),
    ("search-pickle-checkpoint",
     ["search", "--run", "{pickle_run}", "--profiles", "tiny_fast", "--sequential"],
     "refused"),
    # ---------------------------------------------------------------- export
    ("export-no-profile", ["export", "--run", "{run}", "--best"], "--profile"),
    ("export-arch-and-best", ["export", "--run", "{run}", "--profile", "tiny_fast", "--best",
                              "--arch", "k"], "--arch"),
    ("export-not-searched", ["export", "--run", "{run}", "--profile", "tiny_fast", "--best"],
     "tiny_fast"),
    ("export-profile-too-long", ["export", "--run", "{run}", "--profile", LONG, "--best"],
     "profile"),
    ("export-run-missing", ["export", "--run", "{tmp}/nope", "--profile", "a", "--best"],
     "--run"),
    # ---------------------------------------------------------------- report
    ("report-run-missing", ["report", "--run", "{tmp}/nope"], "--run"),
    ("report-run-is-file", ["report", "--run", "{bin}"], "--run"),
    ("report-run-too-long", ["report", "--run", LONG], "--run"),
    # ---------------------------------------------------------------- predictors
    ("collect-n-0", [*C, "--n", "0"], "--n"),
    ("collect-n-negative", [*C, "--n", "-5"], "--n"),
    ("collect-chunk-0", [*C, "--n", "4", "--chunk", "0"], "--chunk"),
    ("collect-batch-0", [*C, "--n", "4", "--batch-size", "0"], "batch"),
    ("collect-bn-negative", [*C, "--n", "4", "--bn-batches", "-1"], "bn"),
    ("collect-device-nonsense", [*C, "--n", "4", "--device", "toaster"], "toaster"),
    ("collect-no-n", [*C], "--n"),
    ("fit-folds-1", [*F, "--folds", "1"], "folds"),
    ("fit-folds-0", [*F, "--folds", "0"], "folds"),
    ("fit-no-samples", [*F], "samples"),
    ("fit-unknown-metric", [*F, "--metric", "beauty"], "beauty"),
    ("fit-unknown-predictor", [*F, "--predictor", "oracle"], "oracle"),
    ("fit-unknown-encoder", [*F, "--encoder", "morse"], "morse"),  # before the samples
    ("fit-metric-too-long", [*F, "--metric", LONG], "metric"),
    ("predictors-no-command", ["predictors", "bogus"], "invalid choice"),
    # ---------------------------------------------------------------- train
    ("train-threads-negative", [*T, "--threads", "-2"], "--threads"),
    ("train-threads-0", [*T, "--threads", "0"], "--threads"),
    ("train-epochs-0", [*T, "--epochs", "0"], "epochs"),
    ("train-epochs-negative", [*T, "--epochs", "-1"], "epochs"),
    ("train-batch-0", [*T, "--batch-size", "0"], "batch"),
    ("train-lr-0", [*T, "--lr", "0"], "lr"),
    ("train-lr-nan", [*T, "--lr", "nan"], "lr"),
    ("train-lr-text", [*T, "--lr", "fast"], "--lr"),
    ("train-schedule-bad", [*T, "--schedule", "random"], "--schedule"),
    ("train-space-unknown", ["train", "--space", "nope", "--runs-dir", "{tmp}"], "nope"),
    ("train-space-and-hf", ["train", "--space", "tiny", "--from-hf", "{dir}"], "--from-hf"),
    ("train-num-random-negative", [*T, "--num-random", "-1"], "num_random"),
    ("train-kd-ratio-negative", [*T, "--kd-ratio", "-0.5"], "kd_ratio"),
    ("train-limit-0", [*T[:-2], "--limit", "0"], "limit"),
    ("train-val-fraction-above-1", [*T, "--val-fraction", "1.5"], "val_fraction"),
    ("train-val-fraction-0", [*T, "--val-fraction", "0"], "val_fraction"),
    ("train-data-unknown", [*T, "--data", "no_such_data"], "no_such_data"),
    ("train-option-no-equals", [*T, "--option", "width"], "--option"),
    ("train-option-unknown", [*T, "--option", "nope=1"], "nope"),
    ("train-workers-0", [*T, "--workers", "0"], "workers"),
    ("train-device-nonsense", [*T, "--device", "toaster"], "toaster"),
    ("train-checkpoint-every-negative", [*T, "--checkpoint-every", "-1"], "checkpoint"),
    ("train-run-name-too-long", ["train", "--space", "tiny", "--runs-dir", "{tmp}", "--run",
                                 LONG], "--run"),
    ("train-run-name-bad-chars", ["train", "--space", "tiny", "--runs-dir", "{tmp}", "--run",
                                  "-x"], "--run"),
    ("train-runs-dir-is-file", ["train", "--space", "tiny", "--runs-dir", "{bin}"], "runs"),
    ("train-from-hf-missing", ["train", "--from-hf", "{tmp}/nope"], "nope"),
    ("train-from-hf-plain-dir", ["train", "--from-hf", "{dir}"], "{dir}"),
    ("train-seq-len-for-images", [*T, "--seq-len", "16"], "--seq-len"),
    ("train-hf-exportable-without-hf", [*T, "--hf-exportable"], "--hf-exportable"),
    # ---------------------------------------------------------------- stats
    ("stats-space-unknown", ["stats", "--space", "nope", "--archs", "{empty_csv}"], "nope"),
    ("stats-archs-missing", [*ST, "{tmp}/none.csv"], "none.csv"),
    ("stats-archs-dir", [*ST, "{dir}"], "{dir}"),
    ("stats-archs-binary", [*ST, "{bin}"], "{bin}"),
    ("stats-archs-empty", [*ST, "{empty_csv}"], "empty.csv"),
    ("stats-archs-bad-arch", [*ST, "{badarch_csv}"], "badarch.csv"),
    ("stats-num-classes-0", [*ST, "{arch_csv}", "--num-classes", "0"], "num"),
    ("stats-seq-len-for-images", [*ST, "{arch_csv}", "--seq-len", "16"], "--seq-len"),
    # ---------------------------------------------------------------- profile
    ("profile-no-command", ["profile", "bogus"], "invalid choice"),
    ("profile-show-unknown", ["profile", "show", "no_such_device"], "no_such_device"),
    ("profile-show-malformed", ["profile", "show", "broken"], "broken"),
    ("profile-show-too-long", ["profile", "show", LONG], "profile"),
    ("profile-build-space-unknown", ["profile", "build", "--space", "nope", "--name", "x",
                                     "--out", "{tmp}"], "nope"),
    ("profile-build-name-too-long", ["profile", "build", "--space", "tiny", "--name", LONG,
                                     "--out", "{tmp}"], "name"),
    ("profile-build-name-bad-chars", ["profile", "build", "--space", "tiny", "--name", "a/b",
                                      "--out", "{tmp}"], "name"),
    ("profile-build-repeats-0", [*B, "--repeats", "0"], "repeats"),
    ("profile-build-warmup-negative", [*B, "--warmup", "-1"], "warmup"),
    ("profile-build-threads-negative", [*B, "--threads", "-2"], "threads"),
    ("profile-build-batch-0", [*B, "--batch-size", "0"], "batch"),
    ("profile-build-rounds-0", [*B, "--rounds", "0"], "rounds"),
    ("profile-build-min-time-negative", [*B, "--min-time-ms", "-1"], "min"),
    ("profile-build-validate-negative", [*B, "--validate", "-1"], "validate"),
    ("profile-build-run-and-out", [*B, "--run", "{run}"], "--out"),
    ("profile-build-out-is-file", ["profile", "build", "--space", "tiny", "--name", "pb",
                                   "--out", "{bin}"], "{bin}"),
    ("profile-import-table-missing", [*I, "--space", "tiny", "--table", "{tmp}/t.csv",
                                      "--arch-columns", "a", "--latency-column", "l"], "t.csv"),
    ("profile-import-table-dir", [*I, "--space", "tiny", "--table", "{dir}",
                                  "--arch-columns", "a", "--latency-column", "l"], "{dir}"),
    ("profile-import-table-binary", [*I, "--space", "tiny", "--table", "{bin}",
                                     "--arch-columns", "a", "--latency-column", "l"], "{bin}"),
    ("profile-import-no-space", [*I, "--table", "{arch_csv}"], "--space"),
    ("profile-import-measure-without-run", [*I, "--measure-here", "4"], "--run"),
    ("profile-import-name-too-long", [*I[:2], "--name", LONG, *I[4:], "--space", "tiny",
                                      "--table", "{arch_csv}", "--arch-columns", "arch",
                                      "--latency-column", "latency_ms"], "name"),
    # ---------------------------------------------------------------- demo
    ("demo-name-bad-chars", ["demo", "--quick", "--runs-dir", "{tmp}", "--name", "a/b"],
     "--name"),
    ("demo-name-too-long", ["demo", "--quick", "--runs-dir", "{tmp}", "--name", LONG],
     "--name"),
    ("demo-runs-dir-is-file", ["demo", "--quick", "--runs-dir", "{bin}"], "runs"),
]
SLOW_CASES = {"search-address-dead-port"}
CASES.append(("search-address-dead-port", ["search", "--run", "{run}", "--profiles",
                                           "tiny_fast", "--address", "127.0.0.1:9"], "address"))
CASES += [
    ("train-weight-decay-negative", [*T, "--weight-decay", "-1"], "weight_decay"),
    ("train-optimizer-unknown", [*T, "--optimizer", "adam"], "--optimizer"),
    ("fit-unknown-encoder-and-predictor", [*F, "--predictor", "rf", "--encoder", "x"],
     "--encoder"),
]


def fill(argv: list[str], inputs: dict[str, str]) -> list[str]:
    """``argv`` with its ``{name}`` placeholders filled from ``inputs``."""
    return [a.format(**inputs) if "{" in a else a for a in argv]


def make_inputs(folder: Path) -> dict[str, str]:
    """Build the files the cases name under ``folder``; also points ``$NAS_PROFILE_PATH`` at
    its profiles (the caller restores the environment)."""
    from test_search_resume_cli import make_tiny_run

    run_dir = folder / "good"
    run_dir.mkdir()
    run = make_tiny_run(run_dir)
    profiles = run_dir / "profiles"
    other = json.loads((profiles / "tiny_fast.json").read_text())
    other["name"] = "other_space"
    other["latency"] = {"nb201": other["latency"]["tiny"]}
    (profiles / "other_space.json").write_text(json.dumps(other))
    (profiles / "broken.json").write_text('{"name": "broken", "latency": ')
    pickled = folder / "pickled"
    shutil.copytree(run, pickled)
    (pickled / "supernet" / "checkpoint.pt").write_bytes(pickle.dumps({"step": os.getpid}))
    (folder / "plain").mkdir()
    (folder / "blob.bin").write_bytes(bytes(range(256)) * 16)
    (folder / "empty.csv").write_text("")
    (folder / "badarch.csv").write_text('arch\n"{""s1.depth"": 99}"\n')
    import numpy as np

    import nas

    archs = nas.create_space("tiny").sample_many(3, np.random.default_rng(0))
    rows = "".join(f'"{a.to_json().replace(chr(34), chr(34) * 2)}",{i + 1.0}\n'
                   for i, a in enumerate(archs))
    (folder / "archs.csv").write_text("arch,latency_ms\n" + rows)
    tmp = folder / "scratch"
    tmp.mkdir()
    os.environ["NAS_PROFILE_PATH"] = str(profiles)
    return {"run": str(run), "pickle_run": str(pickled), "dir": str(folder / "plain"),
            "bin": str(folder / "blob.bin"), "empty_csv": str(folder / "empty.csv"),
            "badarch_csv": str(folder / "badarch.csv"), "arch_csv": str(folder / "archs.csv"),
            "tmp": str(tmp)}


# ------------------------------------------------ profile build with a quantization policy
QB = ["profile", "build", "--space", "tiny+q8-32b", "--name", "pb", "--out", "{tmp}"]
CASES += [
    ("profile-build-bits-with-torch", [*B, "--bits", "32,8"], "--runtime onnxruntime"),
    ("profile-build-bits-not-offered", [*B, "--bits", "32,4", "--runtime", "onnxruntime"],
     "not offered"),
    ("profile-build-bits-on-quantized-space", [*QB, "--bits", "8", "--runtime", "onnxruntime"],
     "quantized already"),
    ("profile-build-quantized-space-with-torch", QB, "int8 kernels"),
]
CASES += [  # size as a constraint and objectives of nas search (issue 14)
    ("search-max-size-text", [*S, "--max-size", "big"], "--max-size"),
    ("search-max-size-zero", [*S, "--max-size", "0"], "--max-size"),
    ("search-objectives-unknown", [*S, "--objectives", "accuracy,beauty"], "beauty"),
    ("search-objectives-direction", [*S, "--objectives", "accuracy:up"], "max|min"),
    ("search-objectives-repeated", [*S, "--objectives", "size_bytes,size_bytes"], "distinct"),
]

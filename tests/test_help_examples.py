"""Every example in a verb's ``--help`` is a valid command as written; the slow test runs them
(at small settings: :func:`small_settings`).

Examples are the lines of each parser's epilog that start with ``nas `` (after an optional
``example:``), joined across trailing backslashes, with ``#`` comments dropped.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from nas.cli import build_parser

ROOT = Path(__file__).resolve().parents[1]


def _parsers(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[
        tuple[tuple[str, ...], argparse.ArgumentParser]]:
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                out.extend(_parsers(child, (*path, name)))
    return out


def examples_of(epilog: str | None) -> list[str]:
    """The example command lines of one epilog."""
    out: list[str] = []
    pending = ""
    for raw in (epilog or "").splitlines():
        line = raw.strip()
        if line.startswith("example:"):
            line = line[len("example:") :].strip()
        if pending:
            line = pending + " " + line
            pending = ""
        elif not line.startswith("nas "):
            continue
        if line.endswith("\\"):
            pending = line[:-1].strip()
            continue
        out.append(line)
    return out


def all_examples() -> list[tuple[str, str]]:
    """``(verb path, example)`` for every parser of ``nas``."""
    return [(" ".join(path) or "nas", ex) for path, p in _parsers(build_parser())
            for ex in examples_of(p.epilog)]


EXAMPLES = all_examples()


def test_every_verb_has_an_example() -> None:
    verbs = {" ".join(path) for path, _ in _parsers(build_parser()) if path}
    with_examples = {v for v, _ in EXAMPLES}
    assert verbs - with_examples == set()


@pytest.mark.parametrize(("verb", "example"), EXAMPLES, ids=[e for _, e in EXAMPLES])
def test_example_parses_as_written(verb: str, example: str) -> None:
    argv = shlex.split(example, comments=True)
    assert argv[0] == "nas" and "nas" not in argv[1:], f"two commands run together: {example}"
    assert argv[1 : 1 + len(verb.split())] == verb.split() or verb == "nas"
    args = build_parser().parse_args(argv[1:])  # SystemExit(2) if an option is wrong
    assert getattr(args, "handler", None) is not None


# "on small settings": the slow test runs each example with its size options shrunk to these
# values (and, for the verbs below, timing options added), so every example is the same
# command at a size the CI machine runs in minutes
SMALL = {"--epochs": "1", "--limit": "600", "--n": "12", "--validate": "6", "--budget": "24",
         "--rounds": "1", "--measure-here": "6", "--suggest": "4"}
TIMING = ("--repeats", "1", "--warmup", "0", "--min-time-ms", "0", "--rounds", "1")
ADDED = {("train",): ("--limit", "600", "--epochs", "1"),
         ("profile", "build"): TIMING, ("profile", "measure"): TIMING[:6],
         ("profile", "import"): ("--predictor", "ridge")}


def small_settings(argv: list[str]) -> list[str]:
    """``argv`` (after ``nas``) with :data:`SMALL` sizes, plus :data:`ADDED` options it lacks."""
    out = list(argv)
    for i, arg in enumerate(out[:-1]):
        if arg in SMALL:
            out[i + 1] = SMALL[arg]
    if "progressive" in out and "--epochs" in out:  # one epoch per phase at the least
        out[out.index("--epochs") + 1] = "4"
    for verb, extra in ADDED.items():
        if tuple(out[: len(verb)]) != verb:
            continue
        if verb == ("profile", "import") and "--table" not in out:
            continue
        for flag, value in zip(extra[::2], extra[1::2], strict=True):
            if flag not in out:
                out += [flag, value]
    return out


def test_small_settings_shrink_and_keep_the_command() -> None:
    argv = shlex.split("train --space tiny --data digits --epochs 5 --run tiny-digits")
    assert small_settings(argv) == [*argv[:-3], "1", "--run", "tiny-digits", "--limit", "600"]
    assert small_settings(["profile", "list"]) == ["profile", "list"]


# placeholders a reader replaces with their own (documented in the example itself)
PLACEHOLDERS = {"models/my-gpt2": "a Hugging Face model folder of the reader's"}
# the order the slow test runs them in: examples that make a run before the ones that read it
FIRST = ("nas demo", "nas train")


def _env(home: Path) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "XDG_DATA_HOME": str(home / "xdg"),
            "PYTHONPATH": str(ROOT)}


@pytest.mark.slow
def test_examples_run_as_written(tmp_path: Path) -> None:
    """Runs every example in a scratch folder laid out like the repository (``../shared`` is
    the shared data); the search/export/report examples use the run ``nas demo --quick
    --name demo-quick`` leaves, which this test makes first, as their note says."""
    work = tmp_path / "main"
    work.mkdir()
    shared = ROOT.parent / "shared"
    if shared.is_dir():
        (tmp_path / "shared").symlink_to(shared)
    env = _env(tmp_path)
    prepare = [sys.executable, "-m", "nas.cli", "demo", "--quick", "--name", "demo-quick"]
    assert subprocess.run(prepare, cwd=work, env=env, timeout=1800).returncode == 0
    todo = sorted(EXAMPLES, key=lambda e: not e[1].startswith(FIRST))
    failures = []
    for _, example in todo:
        argv = shlex.split(example, comments=True)
        if any(p in argv for p in PLACEHOLDERS):
            continue
        key = _a_trial_key(work)
        argv = [key if a == "KEY" else a for a in argv]
        done = subprocess.run([sys.executable, "-m", "nas.cli", *small_settings(argv[1:])],
                              cwd=work, env=env, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            failures.append(f"{example}: {done.stderr.strip().splitlines()[-1:]}")
    assert failures == [], "\n".join(failures)


def _a_trial_key(work: Path) -> str:
    trials = work / "runs" / "demo-quick" / "search" / "nb201_pixel3" / "trials.csv"
    if not trials.exists():
        return "KEY"
    return trials.read_text().splitlines()[1].split(",")[0]

"""Run every bad command line of tests/bad_input_cases.py as a real ``nas`` process and count
how each ends: a one-line exit-2 error, a traceback or internal error, a hang (timeout), a
silent acceptance (exit 0), or another failure.

Usage:
    OMP_NUM_THREADS=1 .venv/bin/python bench/bench_bad_input.py [--timeout 60] [--only ID,...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from bad_input_cases import CASES, fill, make_inputs  # noqa: E402


def classify(rc: int | None, stderr: str, expected: str) -> str:
    """One of: one-line-error, unnamed-error, multi-line-error, traceback, hang, accepted,
    other."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    if rc is None:
        return "hang"
    if "Traceback" in stderr or "internal error" in stderr:
        return "traceback"
    if rc == 0:
        return "accepted"
    if rc == 2 and len(lines) == 1:
        return "one-line-error" if expected.lower() in lines[0].lower() else "unnamed-error"
    if rc == 2:
        return "multi-line-error"
    return "other"


def run_case(argv: list[str], timeout: float, env: dict[str, str]) -> tuple[int | None, str]:
    cmd = [sys.executable, "-m", "nas.cli", *argv]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=ROOT)
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return None, err
    return done.returncode, done.stderr


def _files(folder: Path) -> set[Path]:
    """Every file and folder below ``folder`` (what a case may leave behind)."""
    return set(folder.rglob("*"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    parser.add_argument("--only", default="", help="comma-separated case ids")
    args = parser.parse_args()
    only = {c for c in args.only.split(",") if c}
    counts: Counter[str] = Counter()
    with tempfile.TemporaryDirectory() as folder:
        saved = os.environ.get("NAS_PROFILE_PATH")
        inputs = make_inputs(Path(folder))
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        t0 = time.perf_counter()
        for case_id, argv, expected in CASES:
            if only and case_id not in only:
                continue
            before = _files(Path(inputs["run"]))
            rc, err = run_case(fill(argv, inputs), args.timeout, env)
            kind = classify(rc, err, fill([expected], inputs)[0])
            created = _files(Path(inputs["run"])) - before
            if created:  # a refused case must create nothing; undo it for the next cases
                if kind == "one-line-error":
                    kind = "left-files"
                err += f"\n(left {len(created)} new file(s), e.g. {sorted(created)[0]})"
                for path in sorted(created, key=lambda p: -len(p.parts)):
                    path.unlink() if path.is_file() else path.rmdir()
            counts[kind] += 1
            if kind != "one-line-error":
                last = (err.strip().splitlines() or [""])[-1][:160]
                print(f"{kind:<17} {case_id:<40} rc={rc} {last}")
        if saved is None:
            os.environ.pop("NAS_PROFILE_PATH", None)
        else:
            os.environ["NAS_PROFILE_PATH"] = saved
    total = sum(counts.values())
    print(f"\n{total} cases in {time.perf_counter() - t0:.0f} s")
    print(f"{'outcome':<20}{'count':>6}")
    for kind in ("one-line-error", "unnamed-error", "multi-line-error", "traceback", "hang",
                 "accepted", "left-files", "other"):
        print(f"{kind:<20}{counts[kind]:>6}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

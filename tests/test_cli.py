"""The ``nas`` command: verbs, help, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from nas.cli import build_parser, main


def test_help_lists_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for verb in ("spaces", "report"):
        assert verb in out


def test_every_verb_help_has_an_example() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "verb")
    for name, verb_parser in sub.choices.items():  # type: ignore[union-attr]
        assert "example:" in (verb_parser.epilog or ""), name


def test_spaces_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["spaces", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["nb201"]["size"] == 15625
    assert {"tiny", "ofa_mbv3_w1.0", "ofa_mbv3_w1.2", "ofa_resnet50"} <= set(rows)


def test_console_script_without_verb_exits_2() -> None:
    proc = subprocess.run([sys.executable, "-m", "nas.cli"], capture_output=True, text=True)
    assert proc.returncode == 2

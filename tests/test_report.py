"""Reports: the chosen-subnet table, plots and timings of a run directory."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nas.cli import main
from nas.report import collect_chosen, render_markdown, write_report


def make_run(root: Path) -> Path:
    run = root / "run"
    for profile, key, role, acc in [("cpu", "aaa", "best", 91.5), ("cpu", "bbb", "pareto", 88.0),
                                    ("phone", "ccc", "best", 90.25)]:
        out = run / "exports" / profile / key
        out.mkdir(parents=True)
        (out / "metrics.json").write_text(json.dumps(
            {"role": role, "accuracy_predicted": acc, "latency_ms_predicted": 3.5,
             "params": 12345, "macs": 678901}))
    for profile in ("cpu", "phone"):
        d = run / "search" / profile
        d.mkdir(parents=True)
        fig, ax = plt.subplots()
        ax.plot([1, 2], [3, 4])
        fig.savefig(d / "pareto.png")
        plt.close(fig)
    (run / "timings.json").write_text(json.dumps({"train": 12.5, "search": 3.25}))
    return run


def test_collect_chosen_orders_best_first(tmp_path: Path) -> None:
    rows = collect_chosen(make_run(tmp_path)).rows
    assert [(r["profile"], r["arch_key"], r["role"]) for r in rows] == [
        ("cpu", "aaa", "best"), ("cpu", "bbb", "pareto"), ("phone", "ccc", "best")]


def test_write_report_html_and_markdown(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    html_path, md_path = write_report(run)
    page = html_path.read_text()
    assert page.count("data:image/png;base64,") == 2
    assert "91.500" in page and "12,345" in page and "Time of every step" in page
    md = md_path.read_text()
    assert "| cpu | best | aaa |" in md
    assert "![phone](search/phone/pareto.png)" in md
    assert md == render_markdown(run)
    assert json.loads((run / "report.json").read_text())[2]["arch_key"] == "ccc"


def test_cli_report_and_errors(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run = make_run(tmp_path)
    assert main(["report", "--run", str(run), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["arch_key"] == "aaa"
    assert main(["report", "--run", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "no such run directory" in err

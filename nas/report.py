"""Run reports: one HTML page (self-contained) and one Markdown file per run directory.

The report reads what the steps wrote: ``search/<profile>/pareto.png`` and ``trials.csv``,
``exports/<profile>/<arch_key>/metrics.json`` (the chosen subnets), ``timings.json`` (the
wall time of each step, when the run was made by ``nas demo``) and ``report_notes.json`` (a
list of paragraphs explaining the run, optional). Nothing is recomputed.

Example:
    >>> html_path, md_path = write_report("runs/demo-20261122-0400")
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.rundir import atomic_write_json, atomic_write_text, read_json

# columns shown for each chosen subnet, in order, when present in its metrics.json
COLUMNS: tuple[tuple[str, str], ...] = (
    ("profile", "device profile"),
    ("role", "role"),
    ("arch_key", "arch key"),
    ("arch", "arch"),
    ("accuracy_predicted", "acc. predicted (%)"),
    ("accuracy_measured", "acc. measured (%)"),
    ("accuracy_onnx", "acc. ONNX Runtime (%)"),
    ("latency_ms_predicted", "latency predicted (ms)"),
    ("latency_ms_measured", "latency measured (ms)"),
    ("latency_limit_ms", "latency limit (ms)"),
    ("params", "params"),
    ("macs", "MACs"),
)


@dataclass(frozen=True, kw_only=True)
class ReportTable:
    """The chosen subnets of a run: one dict per exported subnet, in a stable order."""

    rows: list[dict[str, Any]]

    def columns(self) -> list[tuple[str, str]]:
        """The columns present in at least one row."""
        return [(k, label) for k, label in COLUMNS if any(k in r for r in self.rows)]


def collect_chosen(run_dir: str | Path) -> ReportTable:
    """Read ``exports/<profile>/<arch_key>/metrics.json`` of every exported subnet."""
    rows = []
    for metrics_file in sorted(Path(run_dir).glob("exports/*/*/metrics.json")):
        row = dict(read_json(metrics_file))
        row.setdefault("profile", metrics_file.parent.parent.name)
        row.setdefault("arch_key", metrics_file.parent.name)
        rows.append(row)
    rows.sort(key=lambda r: (str(r["profile"]), r.get("role") != "best", str(r["arch_key"])))
    return ReportTable(rows=rows)


def read_timings(run_dir: str | Path) -> dict[str, float]:
    """Step name → seconds, from ``timings.json`` (empty when absent)."""
    path = Path(run_dir) / "timings.json"
    return {str(k): float(v) for k, v in read_json(path).items()} if path.exists() else {}


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items())
    return str(value)


def _markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _plots(run_dir: Path) -> list[tuple[str, Path]]:
    return [(p.parent.name, p) for p in sorted(run_dir.glob("search/*/pareto.png"))]


def _notes(run: Path) -> list[str]:
    path = run / "report_notes.json"
    return [str(n) for n in read_json(path)] if path.exists() else []


def render_markdown(run_dir: str | Path, title: str = "NAS run report") -> str:
    """The Markdown report text of ``run_dir`` (images linked relatively)."""
    run = Path(run_dir)
    table = collect_chosen(run)
    cols = table.columns()
    parts = [f"# {title}", "", f"Run directory: `{run}`", ""]
    parts += [f"{note}\n" for note in _notes(run)]
    parts += ["## Chosen subnets", ""]
    if table.rows:
        parts.append(
            _markdown_table(
                [label for _, label in cols],
                [[_fmt(r.get(k)) for k, _ in cols] for r in table.rows],
            )
        )
    else:
        parts.append("No subnet was exported.")
    for profile, plot in _plots(run):
        parts += ["", f"## Pareto front: {profile}", "", f"![{profile}]({plot.relative_to(run)})"]
    timings = read_timings(run)
    if timings:
        parts += ["", "## Time of every step", ""]
        rows = [[k, f"{v:.1f}"] for k, v in timings.items()]
        parts.append(_markdown_table(["step", "seconds"], rows))
    return "\n".join(parts) + "\n"


_CSS = (
    "body{font-family:sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:4px 8px;font-size:13px;text-align:right}"
    "th{background:#f0f0f0}img{max-width:100%;border:1px solid #ddd}"
)


def render_html(run_dir: str | Path, title: str = "NAS run report") -> str:
    """A self-contained HTML report of ``run_dir`` (plots embedded as base64 PNG)."""
    run = Path(run_dir)
    table = collect_chosen(run)
    cols = table.columns()
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p>Run directory: <code>{html.escape(str(run))}</code></p>",
        *(f"<p>{html.escape(note)}</p>" for note in _notes(run)),
        "<h2>Chosen subnets</h2>",
    ]
    if table.rows:
        parts.append(
            _html_table(
                [label for _, label in cols],
                [[_fmt(r.get(k)) for k, _ in cols] for r in table.rows],
            )
        )
    else:
        parts.append("<p>No subnet was exported.</p>")
    for profile, plot in _plots(run):
        data = base64.b64encode(plot.read_bytes()).decode()
        parts.append(
            f"<h2>Pareto front: {html.escape(profile)}</h2>"
            f"<img alt='{html.escape(profile)}' src='data:image/png;base64,{data}'>"
        )
    timings = read_timings(run)
    if timings:
        parts.append("<h2>Time of every step</h2>")
        rows = [[k, f"{v:.1f}"] for k, v in timings.items()]
        parts.append(_html_table(["step", "seconds"], rows))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(run_dir: str | Path, title: str = "NAS run report") -> tuple[Path, Path]:
    """Write ``report.html`` and ``report.md`` into ``run_dir``; returns their paths."""
    run = Path(run_dir)
    if not run.is_dir():
        raise FileNotFoundError(f"{run}: no such run directory")
    html_path = atomic_write_text(run / "report.html", render_html(run, title))
    md_path = atomic_write_text(run / "report.md", render_markdown(run, title))
    atomic_write_json(run / "report.json", collect_chosen(run).rows)
    return html_path, md_path

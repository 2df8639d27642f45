"""Run reports: one HTML page (self-contained) and one Markdown file per run directory.

The report reads what the steps wrote: ``search/<profile>/pareto.png`` and ``trials.csv``,
``exports/<profile>/<arch_key>/metrics.json`` (the chosen subnets), ``timings.json`` (the
wall time of each step, when the run was made by ``nas demo``) and ``report_notes.json`` (a
list of paragraphs explaining the run, optional). Nothing is recomputed. The chosen subnets'
table shows each one's ``size_bytes`` and, in a quantized space, its ``policy`` (the bits of
its active blocks in order, ``8,8,32,8``); the Pareto plots colour quantized trials by
precision (:func:`nas.search.plot.plot_pareto`).

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

from nas.errors import MissingFileError
from nas.rundir import RunDir, atomic_write_json, atomic_write_text, read_json

FRONT: tuple[tuple[str, str], ...] = (
    ("profile", "device profile"),
    ("role", "role"),
    ("arch_key", "arch key"),
    ("arch", "arch"),
)
BACK: tuple[tuple[str, str], ...] = (
    ("latency_limit_ms", "latency limit (ms)"),
    ("params", "params"),
    ("macs", "MACs"),
    ("size_bytes", "size (bytes)"),
    ("policy", "policy"),  # bits of the active blocks, in order (quantized spaces)
)
SOURCES = ("predicted", "measured", "onnx", "counted")
_SOURCE_LABEL = {"onnx": "ONNX Runtime"}
UNITS = {"latency_ms": ("latency", "ms"), "accuracy": ("accuracy", "%")}


def metric_columns(rows: list[dict[str, Any]], first: str) -> list[tuple[str, str]]:
    """``(key, label)`` of every ``<metric>_<source>`` in ``rows``: ``first`` (the task
    metric), then latency, then the rest by name; each metric's sources in :data:`SOURCES`
    order."""
    present = {k for r in rows for k in r}
    metrics = {k.rpartition("_")[0] for k in present if k.rpartition("_")[2] in SOURCES}
    order = [m for m in (first, "latency_ms") if m in metrics]
    order += sorted(metrics - set(order) - {""})
    out = []
    for metric in order:
        name, unit = UNITS.get(metric, (metric, ""))
        for source in SOURCES:
            if f"{metric}_{source}" in present:
                label = f"{name} {_SOURCE_LABEL.get(source, source)}"
                out.append((f"{metric}_{source}", f"{label} ({unit})" if unit else label))
    return out


@dataclass(frozen=True, kw_only=True)
class ReportTable:
    """The chosen subnets of a run: one dict per exported subnet, in a stable order."""

    rows: list[dict[str, Any]]
    metric: str = "accuracy"

    def columns(self) -> list[tuple[str, str]]:
        """The columns present in at least one row: identity, metrics, limits and counts."""
        fixed = [(k, label) for k, label in (*FRONT, *BACK) if any(k in r for r in self.rows)]
        front = [c for c in fixed if c[0] in dict(FRONT)]
        return [*front, *metric_columns(self.rows, self.metric),
                *[c for c in fixed if c[0] in dict(BACK)]]


def collect_chosen(run_dir: str | Path) -> ReportTable:
    """Read ``exports/<profile>/<arch_key>/metrics.json`` of every exported subnet."""
    run = _open(run_dir)
    rows = []
    for metrics_file in run.export_metrics():
        row = dict(read_json(metrics_file))
        row.setdefault("profile", metrics_file.parent.parent.name)
        row.setdefault("arch_key", metrics_file.parent.name)
        rows.append(row)
    rows.sort(key=lambda r: (str(r["profile"]), r.get("role") != "best", str(r["arch_key"])))
    return ReportTable(rows=rows, metric=_task_metric(run))


def _task_metric(run: RunDir) -> str:
    from nas.tasks import create_task

    info = run.info() if run.space is not None else {}
    if run.space is not None:
        return run.task.metric
    return create_task(str(info.get("task", "classification"))).metric


def _open(run_dir: str | Path) -> RunDir:
    """The run; a folder holding only some of a run's files (no ``space.json``) is read as
    far as it goes, so a report can be written from whatever the steps left."""
    path = Path(run_dir)
    if not path.is_dir():
        raise MissingFileError(f"{path}: no such run directory")
    if RunDir.is_run(path):
        return RunDir.open(path)
    return RunDir(path, space=None)  # type: ignore[arg-type]  # the layout needs no space


def read_timings(run_dir: str | Path) -> dict[str, float]:
    """Step name → seconds, from ``timings.json`` (empty when absent)."""
    return _open(run_dir).timings()


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


TEXT_COLUMNS = ("arch", "step", "policy")  # wrap and take the width the other columns leave
NARROW_MAX_PCT = 7.0  # share of the table each other column (numbers, names, keys) gets at most
TEXT_MIN_PCT = 20.0  # share the text columns keep however many other columns there are


def narrow_width_pct(n_narrow: int, n_text: int) -> float:
    """The width (% of the table) of each non-text column: :data:`NARROW_MAX_PCT`, less when
    that would leave the text columns under :data:`TEXT_MIN_PCT`."""
    room = 100.0 - (TEXT_MIN_PCT if n_text else 0.0)
    return min(NARROW_MAX_PCT if n_text else 100.0, room / max(1, n_narrow))


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A table that fits the page width: fixed layout, every non-text column the width of
    :func:`narrow_width_pct`, the text columns (the arch) the rest, wrapped anywhere."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    wide = {i for i, h in enumerate(header) if h in TEXT_COLUMNS}  # text columns wrap
    pct = narrow_width_pct(len(header) - len(wide), len(wide))
    cols = "".join("<col class='text'>" if i in wide else f"<col style='width:{pct:.2f}%'>"
                   for i in range(len(header)))
    body = "".join(
        "<tr>" + "".join(
            f"<td class='text'>{html.escape(c)}</td>" if i in wide else f"<td>{html.escape(c)}</td>"
            for i, c in enumerate(row)
        ) + "</tr>"
        for row in rows
    )
    return (f"<table><colgroup>{cols}</colgroup><thead><tr>{head}</tr></thead>"
            f"<tbody>{body}</tbody></table>")


def _plots(run_dir: Path) -> list[tuple[str, Path]]:
    return _open(run_dir).pareto_plots()


def _notes(run: Path) -> list[str]:
    path = _open(run).notes_json
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


# fits a 1,400-pixel window: the page is at most 1,336 px wide (1,400 less the margins), the
# table takes exactly the page width (fixed layout) and only the arch column wraps
PAGE_MAX_PX = 1336
_CSS = (
    f"body{{font-family:sans-serif;margin:2em;max-width:{PAGE_MAX_PX}px}}"
    "table{border-collapse:collapse;margin:1em 0;width:100%;table-layout:fixed}"
    "td,th{border:1px solid #ccc;padding:4px 6px;font-size:13px;text-align:right;"
    "overflow-wrap:anywhere}"
    "th{background:#f0f0f0;text-align:center;font-size:12px}"
    "img{max-width:100%;border:1px solid #ddd}"
    "td.text{text-align:left;word-break:break-all;font-family:monospace;font-size:12px}"
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
    run = _open(run_dir)
    html_path, md_path, json_path = run.report_paths
    atomic_write_text(html_path, render_html(run.path, title))
    atomic_write_text(md_path, render_markdown(run.path, title))
    atomic_write_json(json_path, collect_chosen(run.path).rows)
    return html_path, md_path

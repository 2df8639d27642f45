"""The report's subnet table fits a 1,400-pixel window: long arch strings wrap, params and
MACs stay on screen (a static check of the table's layout: fixed, narrow numeric columns)."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

from nas.report import PAGE_MAX_PX, render_html

WINDOW_PX, MARGIN_PX, FONT_PX = 1400, 32, 13  # body margin: 2em of 16 px
MIN_ARCH_PX = 240
MIN_NUMBER_PX = 4 * FONT_PX  # a column narrower than 4 em would show a number as a sliver


class _Table(HTMLParser):
    """Collects the first table's ``<col>`` styles, header labels and cell classes."""

    def __init__(self) -> None:
        super().__init__()
        self.cols: list[dict[str, str | None]] = []
        self.header: list[str] = []
        self.cells: list[tuple[str | None, str]] = []
        self._in: str | None = None
        self._cls: str | None = None
        self.tables = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables += 1
        if self.tables != 1:
            return
        if tag == "col":
            self.cols.append(dict(attrs))
        if tag in ("th", "td"):
            self._in, self._cls = tag, dict(attrs).get("class")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td"):
            self._in = None

    def handle_data(self, data: str) -> None:
        if self.tables == 1 and self._in == "th":
            self.header.append(data)
        elif self.tables == 1 and self._in == "td":
            self.cells.append((self._cls, data))


def _run(root: Path) -> Path:
    arch = {f"stage{i}.block{j}.kernel_size_choice": 7 for i in range(6) for j in range(4)}
    out = root / "run" / "exports" / "a_very_long_device_profile_name" / "0123456789ab"
    out.mkdir(parents=True)
    metrics = {"role": "best", "arch": json.dumps(arch), "params": 5_288_548, "macs": 598_000_000,
               "latency_limit_ms": 12.0}
    for m in ("accuracy", "latency_ms", "energy_mj", "loss"):
        for source in ("predicted", "measured", "onnx"):
            metrics[f"{m}_{source}"] = 1.0
    (out / "metrics.json").write_text(json.dumps(metrics))
    return root / "run"


def test_subnet_table_fits_a_1400_pixel_window(tmp_path: Path) -> None:
    page = render_html(_run(tmp_path))
    css = page[page.index("<style>") : page.index("</style>")]
    assert PAGE_MAX_PX + 2 * MARGIN_PX <= WINDOW_PX
    assert re.search(r"table\{[^}]*width:100%[^}]*table-layout:fixed", css)
    assert re.search(r"td\.text\{[^}]*word-break:break-all", css)
    table = _Table()
    table.feed(page)
    assert "params" in table.header and "MACs" in table.header and "arch" in table.header
    assert len(table.cols) == len(table.header)
    arch_col = table.header.index("arch")
    narrow = [c for i, c in enumerate(table.cols) if i != arch_col]
    assert table.cols[arch_col].get("class") == "text"
    widths = [float(re.fullmatch(r"width:([0-9.]+)%", c.get("style") or "")[1]) for c in narrow]
    page_px = PAGE_MAX_PX
    assert sum(widths) <= 100 - 100 * MIN_ARCH_PX / page_px, sum(widths)
    assert min(widths) * page_px / 100 >= MIN_NUMBER_PX, min(widths)
    arch_cells = [cls for cls, text in table.cells if text.startswith("{")]
    assert arch_cells == ["text"]  # the long arch string is in the wrapping column

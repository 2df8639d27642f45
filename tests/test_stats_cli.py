"""``nas stats``: the three CSV forms, output files, JSON, and one-line errors."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

import nas
from nas.cli import main

DYNAST = (
    Path(__file__).resolve().parents[2]
    / "shared" / "data" / "ofa_mobilenet_v3" / "dynast_imagenet_subnets.csv"
)


def _write(path: Path, header: list[str], rows: Sequence[Sequence[object]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _read(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.skipif(not DYNAST.exists(), reason="shared DyNAS-T data not present")
def test_ofa_columns_match_published_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                            ) -> None:
    lines = DYNAST.read_text().splitlines()[:31]
    src = tmp_path / "subnets.csv"
    src.write_text("\n".join(lines) + "\n")
    out = tmp_path / "counts.csv"
    assert main(["stats", "--space", "ofa_mbv3_w1.0", "--archs", str(src), "--out", str(out)]) == 0
    rows = _read(out)
    assert len(rows) == 30
    assert list(rows[0])[-2:] == ["params", "macs"]
    assert all(r["params"] == r["params_input"] and r["macs"] == r["macs_input"] for r in rows)
    err = capsys.readouterr().err
    assert "params: 30/30 equal" in err and "macs: 30/30 equal" in err


def test_dotted_columns_and_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    space = nas.create_space("tiny")
    archs = space.sample_many(5, np.random.default_rng(0))
    src = _write(tmp_path / "a.csv", ["id", *space.names],
                 [[i, *a.to_dict().values()] for i, a in enumerate(archs)])
    assert main(["stats", "--space", "tiny", "--archs", str(src), "--json",
                 "--num-classes", "10"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["id"] for r in records] == ["0", "1", "2", "3", "4"]
    for record, arch in zip(records, archs):
        expected = nas.count(space, arch, num_classes=10)
        assert (record["params"], record["macs"]) == (expected["params"], expected["macs"])


def test_arch_json_column_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    space = nas.create_space("tiny")
    arch = space.largest()
    src = _write(tmp_path / "a.csv", ["arch"], [[arch.to_json()]])
    assert main(["stats", "--space", "tiny", "--archs", str(src)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert int(rows[0]["params"]) == nas.count(space, arch)["params"]


def test_bad_row_is_one_line_error_naming_row_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = nas.create_space("tiny")
    good = list(space.largest().to_dict().values())
    bad = list(good)
    bad[space.names.index("s1.b0.kernel")] = 9
    src = _write(tmp_path / "a.csv", list(space.names), [good, bad])
    assert main(["stats", "--space", "tiny", "--archs", str(src)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "row 2" in err and "s1.b0.kernel" in err and "allowed values are [3, 5]" in err


def test_unknown_format_and_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                        ) -> None:
    src = _write(tmp_path / "a.csv", ["foo"], [[1]])
    assert main(["stats", "--space", "tiny", "--archs", str(src)]) == 2
    assert "cannot tell the architecture format" in capsys.readouterr().err
    assert main(["stats", "--space", "tiny", "--archs", str(tmp_path / "none.csv")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_help_has_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["stats", "--help"])
    assert "example: nas stats --space ofa_mbv3_w1.0" in capsys.readouterr().out


def test_nb201_cell_strings_in_arch_column(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    space = nas.create_space("nb201")
    cells = [
        "|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|",
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    ]
    src = _write(tmp_path / "cells.csv", ["arch"], [[c] for c in cells])
    assert main(["stats", "--space", "nb201", "--archs", str(src), "--json",
                 "--num-classes", "10"]) == 0
    records = json.loads(capsys.readouterr().out)
    for record, cell in zip(records, cells):
        expected = nas.count(space, space.parse(cell), num_classes=10)  # type: ignore[attr-defined]
        assert (record["params"], record["macs"]) == (expected["params"], expected["macs"])


def test_a_folder_or_binary_file_is_named(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--space", "tiny", "--archs", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    binary = tmp_path / "b.csv"
    binary.write_bytes(b"\xff\xfe\x00\x01")
    assert main(["stats", "--space", "tiny", "--archs", str(binary)]) == 2
    assert "b.csv: not a UTF-8 text CSV" in capsys.readouterr().err


def test_stats_and_table_import_read_a_table_alike(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """One reader (nas.arch_table): ``read_arch_table`` takes what ``nas stats`` takes,
    Python-literal tuples and ``[224]`` resolutions included."""
    from nas.arch_table import read_arch_table

    space = nas.create_space("ofa_mbv3_w1.0")
    ofa = [space.to_ofa(a) for a in space.sample_many(3, np.random.default_rng(1))]
    rows = [[json.dumps(o["ks"]), str(tuple(o["e"])), json.dumps(o["d"]), "[224]" if i else 224, i]
            for i, o in enumerate(ofa)]
    src = _write(tmp_path / "t.csv", ["ks", "e", "d", "r", "latency_ms"], rows)
    archs, frame = read_arch_table(src, space, ["ks", "e", "d", "r"])
    assert list(frame["latency_ms"]) == [0, 1, 2]
    assert main(["stats", "--space", "ofa_mbv3_w1.0", "--archs", str(src), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["macs"] for r in records] == [nas.count(space, a)["macs"] for a in archs]
    assert [r["latency_ms"] for r in records] == ["0", "1", "2"]  # stats keeps the text

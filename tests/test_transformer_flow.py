"""Language-model spaces through counting, ``nas stats``, export and the whole CLI flow."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nas
from nas.cli import main
from nas.counting import count_many
from nas.errors import ConfigError

NAS = [sys.executable, "-m", "nas.cli"]


def test_macs_per_sequence_at_a_stated_length() -> None:
    space = nas.create_space("gpt_tiny")
    arch = space.largest()
    default = nas.count(space, arch, 256)
    assert nas.count(space, arch, 256, seq_len=128) == default  # meta seq_len is 128
    half = nas.count(space, arch, 256, seq_len=64)
    assert half["params"] == default["params"]
    # 4 blocks of width 64, 4 heads of 16, MLP 256: linear MACs per token, attention per t^2
    d, hidden, layers = 64, 256, 4
    per_token = layers * (4 * d * d + 2 * d * hidden) + d * 256  # blocks + tied head
    for t, counts in ((128, default), (64, half)):
        assert counts["macs"] == t * per_token + layers * 2 * 4 * t * t * 16
    archs = space.sample_many(5, np.random.default_rng(0))
    many = count_many(space, archs, 256, seq_len=32)
    assert many == [nas.count(space, a, 256, seq_len=32) for a in archs]
    with pytest.raises(ConfigError, match="max_positions=256"):
        nas.count(space, arch, 256, seq_len=300)
    vit = nas.create_space("vit_mini")
    with pytest.raises(ConfigError, match="no sequence length"):
        nas.count(vit, vit.largest(), 10, seq_len=16)


def _archs_csv(path: Path, space: nas.SearchSpace, n: int) -> Path:
    archs = space.sample_many(n, np.random.default_rng(1))
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["arch"])
        writer.writerows([[a.to_json()] for a in archs])
    return path


def test_stats_records_the_sequence_length_of_a_language_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = nas.create_space("gpt_tiny")
    src = _archs_csv(tmp_path / "archs.csv", space, 4)
    assert main(["stats", "--space", "gpt_tiny", "--archs", str(src)]) == 2
    assert "give --num-classes VOCAB" in capsys.readouterr().err
    out = tmp_path / "counts.csv"
    assert main(["stats", "--space", "gpt_tiny", "--archs", str(src), "--num-classes", "256",
                 "--seq-len", "64", "--out", str(out)]) == 0
    frame = pd.read_csv(out)
    assert list(frame.columns) == ["arch", "params", "macs", "seq_len"]
    archs = [space.from_json(a) for a in frame["arch"]]
    expected = count_many(space, archs, 256, seq_len=64)
    assert frame["macs"].tolist() == [c["macs"] for c in expected]
    assert set(frame["seq_len"]) == {64}
    vit = _archs_csv(tmp_path / "vit.csv", nas.create_space("vit_mini"), 2)
    capsys.readouterr()
    assert main(["stats", "--space", "vit_mini", "--archs", str(vit), "--seq-len", "8"]) == 2
    err = capsys.readouterr().err.strip()
    assert "has no sequence length" in err and len(err.splitlines()) == 1


def test_export_of_a_language_model_records_its_sequence_length(tmp_path: Path) -> None:
    supernet = nas.create_supernet("gpt_tiny", num_classes=256)
    arch = supernet.space.smallest()
    out = nas.export_subnet(supernet, arch, tmp_path / "e", formats=("torch",))
    info = json.loads((out / "arch.json").read_text())
    assert info["seq_len"] == 128 and "resolution" not in info
    assert info["num_classes"] == 256 and info["input_dtype"] == "int64"


def _nas(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*NAS, *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert out.returncode == 0, f"nas {' '.join(args)}: {out.stderr[-2000:]}"
    return out


@pytest.mark.slow
def test_gpt_run_through_every_cli_verb(tmp_path: Path) -> None:
    _nas("train", "--space", "gpt_tiny", "--data", "pydoc", "--seq-len", "32", "--limit", "300",
         "--epochs", "1", "--run", "g", cwd=tmp_path)
    run = tmp_path / "runs" / "g"
    _nas("predictors", "collect", "--run", "g", "--n", "12", "--bn-batches", "0", cwd=tmp_path)
    assert len(pd.read_csv(run / "samples" / "perplexity.csv")) == 12
    _nas("predictors", "fit", "--run", "g", cwd=tmp_path)
    _nas("profile", "build", "--space", "gpt_tiny", "--run", "g", "--name", "here",
         "--num-classes", "256", "--seq-len", "64", "--warmup", "0", "--repeats", "1",
         "--validate", "6", cwd=tmp_path)
    profile = json.loads((run / "profiles" / "here.json").read_text())
    assert (profile["batch_size"], profile["seq_len"]) == (1, 64)
    assert profile["latency"]["gpt_tiny"]["predictor"]["predictor"] == "lut"
    _nas("search", "--run", "g", "--profiles", "here", "--budget", "10", "--sequential",
         "--latency-quantile", "0.5", "--export-top", "0", cwd=tmp_path)
    trials = pd.read_csv(run / "search" / "here" / "trials.csv")
    assert len(trials) == 10 and {"perplexity", "latency_ms"} <= set(trials.columns)
    assert (run / "search" / "here" / "pareto.png").is_file()
    _nas("export", "--run", "g", "--profile", "here", "--best", "--measure", cwd=tmp_path)
    (export,) = (run / "exports" / "here").iterdir()
    metrics = json.loads((export / "metrics.json").read_text())
    assert {"perplexity_predicted", "perplexity_measured", "latency_ms_predicted"} <= set(metrics)
    assert json.loads((export / "arch.json").read_text())["seq_len"] == 128
    _nas("report", "--run", "runs/g", cwd=tmp_path)
    report = json.loads((run / "report.json").read_text())
    assert any(r["profile"] == "here" for r in report)

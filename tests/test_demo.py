"""``nas demo --quick`` end to end, checking every artefact (slow: run by .ci/run with -m slow)."""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from nas.cli import main
from nas.data import load_data, resize, split
from nas.export import load_subnet

PROFILES = {"this_machine", "nb201_pixel3", "nb201_silver_4210r"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    assert main(["demo", "--quick", "--runs-dir", str(root), "--name", "demo"]) == 0
    return root / "demo"


@pytest.mark.slow
@pytest.mark.ray
def test_demo_writes_every_step(demo_run: Path) -> None:
    timings = json.loads((demo_run / "timings.json").read_text())
    assert len(timings) == 7 and timings["total"] > 0
    for name in ("supernet/checkpoint.pt", "supernet/history.jsonl", "samples/accuracy.csv",
                 "samples/latency_this_machine.csv", "profiles/this_machine.json",
                 "predictors/accuracy_fit.json", "report.html", "report.md"):
        assert (demo_run / name).is_file(), name
    assert {p.name for p in (demo_run / "search").iterdir()} == PROFILES


@pytest.mark.slow
@pytest.mark.ray
def test_report_table_matches_trials_and_pareto(demo_run: Path) -> None:
    rows = json.loads((demo_run / "report.json").read_text())
    assert {r["profile"] for r in rows} == PROFILES
    md = (demo_run / "report.md").read_text()
    for row in rows:
        search = demo_run / "search" / row["profile"]
        trials = pd.read_csv(search / "trials.csv").set_index("key")
        trial = trials.loc[row["arch_key"]]
        assert trial["accuracy"] == pytest.approx(row["accuracy_predicted"])
        assert trial["latency_ms"] == pytest.approx(row["latency_ms_predicted"])
        assert trial["latency_ms"] <= row["latency_limit_ms"]
        feasible = trials[trials["feasible"].astype(bool)]
        assert trial["accuracy"] == pytest.approx(feasible["accuracy"].max())
        assert row["arch_key"] in set(pd.read_csv(search / "pareto.csv")["key"])
        assert f"| {row['profile']} | best | {row['arch_key']} |" in md


@pytest.mark.slow
@pytest.mark.ray
def test_exports_load_and_run(demo_run: Path) -> None:
    _, val = split(load_data("digits"), val_fraction=0.2, seed=0)
    images, labels = val.batch(np.arange(len(val)))
    x = resize(images, 16)
    for metrics_file in demo_run.glob("exports/*/*/metrics.json"):
        metrics = json.loads(metrics_file.read_text())
        model = load_subnet(metrics_file.parent).eval()
        top1 = 100.0 * float((model(x).argmax(1) == labels).float().mean())
        assert top1 == pytest.approx(metrics["accuracy_measured"], abs=0.3)
        session = load_subnet(metrics_file.parent, format="onnx")
        logits = session.run(None, {session.get_inputs()[0].name: x.numpy()})[0]
        assert np.abs(logits - model(x).detach().numpy()).max() < 1e-3
        assert metrics["accuracy_onnx"] == pytest.approx(top1, abs=0.3)


@pytest.mark.slow
@pytest.mark.ray
def test_pareto_plots_are_rendered(demo_run: Path) -> None:
    for profile in PROFILES:
        image = matplotlib.image.imread(demo_run / "search" / profile / "pareto.png")
        assert image.shape[0] >= 300 and image.shape[1] >= 600
        assert image[..., :3].std() > 0.05  # not blank
        assert image[..., :3].reshape(-1, 3).std(axis=0).max() > 0.05  # has colour

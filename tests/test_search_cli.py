"""``nas search`` and ``nas export`` end to end on a tiny run (sequential: no Ray)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import nas
from nas.checkpoint import save_checkpoint
from nas.cli import main
from nas.rundir import RunDir, atomic_write_json
from nas.tasks import DataSpec


def _tiny_profile(folder: Path, name: str, scale: float) -> None:
    from nas.hardware.profile import HardwareProfile, LatencyModel, Provenance, save_profile
    from predictors import create_predictor
    from predictors.io import predictor_to_json

    space = nas.create_space("tiny")
    archs = space.sample_many(60, np.random.default_rng(0))
    y = [
        scale * (float(a["resolution"]) / 8 + float(a["s1.depth"]) + float(a["s2.depth"]))
        for a in archs
    ]
    predictor = create_predictor("ridge", space=space).fit(archs, np.array(y))
    model = LatencyModel(
        space="tiny", fingerprint=space.fingerprint(), predictor=predictor_to_json(predictor)
    )
    profile = HardwareProfile(
        name=name,
        kind="cpu",
        device="test",
        runtime="torch",
        provenance=Provenance(source="synthetic", licence="CC0"),
        latency={"tiny": model},
    )
    save_profile(profile, folder / f"{name}.json")


@pytest.fixture()
def tiny_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    space = nas.create_space("tiny")
    run = RunDir.create(tmp_path / "run", space)
    run.update_info(task="classification", data=DataSpec(data="digits", limit=160).to_dict())
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    atomic_write_json(run.path / "supernet" / "config.json", {"num_classes": 10, "space": "tiny"})
    save_checkpoint(
        run.path / "supernet" / "checkpoint.pt",
        {"step": 0, "epoch": 0, "batch": 0, "model": supernet.state_dict()},
        space=space,
    )
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    _tiny_profile(profiles, "tiny_fast", 0.5)
    _tiny_profile(profiles, "tiny_slow", 2.0)
    monkeypatch.setenv("NAS_PROFILE_PATH", str(profiles))
    return run.path


def test_search_then_export(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "search",
            "--run",
            str(tiny_run),
            "--profiles",
            "tiny_fast,tiny_slow",
            "--searcher",
            "nsga2",
            "--budget",
            "8",
            "--batch-size",
            "4",
            "--max-latency",
            "8",
            "--max-latency-for",
            "tiny_slow=20",
            "--images",
            "32",
            "--bn-batches",
            "1",
            "--sequential",
            "--export-top",
            "1",
            "--formats",
            "torch",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary) == {"tiny_fast", "tiny_slow"}
    for profile, row in summary.items():
        trials = pd.read_csv(tiny_run / "search" / profile / "trials.csv")
        assert len(trials) == 8 and trials["key"].is_unique
        plan = json.loads((tiny_run / "search" / profile / "plan.json").read_text())
        assert plan["sources"] == {"accuracy": "measured", "latency_ms": "predicted"}
        assert row["latency_ms"] <= (8 if profile == "tiny_fast" else 20)
        assert 1 <= len(row["exported"]) <= 2
        metrics = json.loads((Path(row["exported"][0]) / "metrics.json").read_text())
        assert metrics["profile"] == profile and metrics["feasible"]
        assert metrics["accuracy_measured"] == pytest.approx(row["accuracy"])
    key = pd.read_csv(tiny_run / "search" / "tiny_slow" / "trials.csv")["key"].iloc[-1]
    code = main(
        [
            "export",
            "--run",
            str(tiny_run),
            "--profile",
            "tiny_slow",
            "--arch",
            key,
            "--formats",
            "torch",
            "--measure",
            "--json",
        ]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    metrics = json.loads((Path(out["path"]) / "metrics.json").read_text())
    assert 0 <= metrics["accuracy_measured"] <= 100
    assert main(["export", "--run", str(tiny_run), "--profile", "tiny_slow", "--arch", "nope"]) == 2
    assert "not a trial" in capsys.readouterr().err
    # a second search over the same logs needs --resume
    assert (
        main(
            [
                "search",
                "--run",
                str(tiny_run),
                "--profiles",
                "tiny_fast",
                "--budget",
                "8",
                "--sequential",
            ]
        )
        == 2
    )
    assert "--resume" in capsys.readouterr().err


def test_search_usage_errors(tiny_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["search", "--run", "nowhere", "--profiles", "a"]) == 2
    assert "no run directory" in capsys.readouterr().err
    assert (
        main(
            [
                "search",
                "--run",
                str(tiny_run),
                "--profiles",
                "tiny_fast",
                "--max-latency-for",
                "other=3",
                "--sequential",
            ]
        )
        == 2
    )
    assert "PROFILE=ms" in capsys.readouterr().err


def test_search_with_macs_and_params_limits(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from nas.counting import count

    code = main(
        [
            "search",
            "--run",
            str(tiny_run),
            "--profiles",
            "tiny_fast",
            "--searcher",
            "random",
            "--budget",
            "12",
            "--max-macs",
            "200k",
            "--max-params",
            "1.5e4",
            "--accuracy",
            "measured",
            "--images",
            "16",
            "--bn-batches",
            "1",
            "--sequential",
            "--export-top",
            "-1",
            "--json",
        ]
    )
    assert code == 0
    row = json.loads(capsys.readouterr().out)["tiny_fast"]
    trials = pd.read_csv(tiny_run / "search" / "tiny_fast" / "trials.csv")
    assert len(trials) == 12
    space = nas.create_space("tiny")
    for text, macs, params in zip(trials["arch"], trials["macs"], trials["params"]):
        counted = count(space, space.from_json(text), num_classes=10)
        assert (macs, params) == (counted["macs"], counted["params"])
    feasible = (trials["macs"] <= 200_000) & (trials["params"] <= 15_000)
    assert 0 < feasible.sum() < 12  # the limits bind on some trials, not all
    assert (trials["feasible"] == feasible).all()
    assert row["macs"] <= 200_000 and row["params"] <= 15_000
    plan = json.loads((tiny_run / "search" / "tiny_fast" / "plan.json").read_text())
    assert plan["sources"]["macs"] == plan["sources"]["params"] == "counted"


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--max-macs", "lots"), ("--max-macs", "-5"), ("--max-params", "0"), ("--max-params", "nan"),
     ("--max-size", "2X"), ("--max-size", "0k")],
)
def test_bad_count_limits_name_the_flag(
    tiny_run: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str
) -> None:
    args = ["search", "--run", str(tiny_run), "--profiles", "tiny_fast", "--sequential"]
    assert main([*args, flag, value]) == 2
    err = capsys.readouterr().err
    assert flag in err and repr(value) in err and "positive number" in err and "300M" in err


def test_search_with_a_size_limit_and_size_as_an_objective(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["search", "--run", str(tiny_run), "--profiles", "tiny_fast", "--searcher",
                 "random", "--budget", "12", "--max-size", "60k", "--objectives",
                 "accuracy,latency_ms,size_bytes:min", "--images", "16", "--bn-batches", "1",
                 "--sequential", "--export-top", "-1", "--json"])
    assert code == 0
    row = json.loads(capsys.readouterr().out)["tiny_fast"]
    trials = pd.read_csv(tiny_run / "search" / "tiny_fast" / "trials.csv")
    assert (trials["size_bytes"] == 4 * trials["params"]).all()  # float32: 4 bytes a weight
    assert (trials["feasible"] == (trials["size_bytes"] <= 60_000)).all()
    assert 0 < trials["feasible"].sum() < 12 and row["size_bytes"] <= 60_000
    plan = json.loads((tiny_run / "search" / "tiny_fast" / "plan.json").read_text())
    assert plan["objectives"]["size_bytes"] == "min" and plan["sources"]["size_bytes"] == "counted"


@pytest.mark.parametrize("value", ["beauty", "accuracy:up", "accuracy,accuracy"])
def test_bad_objectives_name_the_flag_and_the_metrics(
    tiny_run: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    args = ["search", "--run", str(tiny_run), "--profiles", "tiny_fast", "--sequential"]
    assert main([*args, "--objectives", value]) == 2
    err = capsys.readouterr().err
    assert "--objectives" in err and "size_bytes" in err and len(err.strip().splitlines()) == 1
    assert not (tiny_run / "search" / "tiny_fast" / "trials.csv").exists()

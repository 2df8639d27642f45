"""``nas profile`` and ``nas predictors``: import, build, measure, list, show, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nas
from nas.cli import main
from nas.hardware import load_profile

NB201 = nas.create_space("nb201")


def _nb201_table(path: Path, n: int = 300) -> Path:
    rng = np.random.default_rng(0)
    archs = NB201.sample_many(n, rng)
    counts = NB201.encode(archs)
    cost = np.tile([0.0, 0.1, 1.0, 3.0, 0.5], 6)  # per-op cost on every edge
    latency = 5.0 + counts @ cost + rng.normal(0, 0.05, n)
    frame = pd.DataFrame({"arch": [NB201.format(a) for a in archs], "lat": latency})  # type: ignore[attr-defined]
    frame.to_csv(path, index=False)
    return path


def _import(table: Path, out: Path, *extra: str) -> int:
    return main([
        "profile", "import", "--space", "nb201", "--table", str(table), "--arch-columns", "arch",
        "--latency-column", "lat", "--name", "toy_dev", "--kind", "phone", "--device", "Toy",
        "--runtime", "tflite", "--source", "tests", "--licence", "CC0-1.0", "--out", str(out),
        *extra,
    ])


def test_import_list_show(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    table = _nb201_table(tmp_path / "t.csv")
    assert _import(table, tmp_path / "profiles", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["validation"]["kendall_tau"] > 0.9
    assert result["validation"]["n_test"] >= 60
    profile = load_profile(tmp_path / "profiles" / "toy_dev.json")
    assert profile.kind == "phone" and profile.provenance.licence == "CC0-1.0"
    monkeypatch.setenv("NAS_PROFILE_PATH", str(tmp_path / "profiles"))
    assert main(["profile", "list", "--json"]) == 0
    names = [r["name"] for r in json.loads(capsys.readouterr().out)]
    assert "toy_dev" in names and "nb201_pixel3" in names
    assert main(["profile", "show", "toy_dev", "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["spaces"]["nb201"]["predictor"] == "huber"


def test_import_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    table = _nb201_table(tmp_path / "t.csv", n=20)
    frame = pd.read_csv(table)
    frame.loc[3, "arch"] = "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    assert _import(tmp_path / "bad.csv", tmp_path) == 2
    err = capsys.readouterr().err
    assert "bad.csv" in err and "line 5" in err and "'conv' is not allowed" in err
    code = main(["profile", "import", "--space", "nb201", "--table", str(table),
                 "--arch-columns", "cell", "--latency-column", "lat", "--name", "x",
                 "--source", "s", "--licence", "MIT", "--out", str(tmp_path)])
    assert code == 2
    assert "arch column(s) ['cell']" in capsys.readouterr().err
    code = main(["profile", "import", "--space", "nb201", "--table", str(table),
                 "--arch-columns", "arch", "--latency-column", "nope", "--name", "x",
                 "--source", "s", "--licence", "MIT", "--out", str(tmp_path)])
    assert code == 2 and "no column 'nope'" in capsys.readouterr().err


def test_build_and_measure_tiny(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["profile", "build", "--space", "tiny", "--name", "tiny_here", "--out",
                 str(tmp_path), "--warmup", "0", "--repeats", "1", "--num-classes", "10",
                 "--validate", "8", "--partial", str(tmp_path / "partial.json")])
    assert code == 0
    out = capsys.readouterr().out
    assert "corrected_holdout" in out
    profile = load_profile(tmp_path / "tiny_here.json")
    model = profile.latency["tiny"]
    assert len(model.lut) > 10 and model.predictor is not None
    assert {"kendall_tau", "mape", "n_test"} <= set(model.validation)
    assert not (tmp_path / "partial.json").exists()  # removed once the build completes
    code = main(["profile", "measure", "--profile", str(tmp_path / "tiny_here.json"),
                 "--space", "tiny", "--n", "4", "--warmup", "0", "--repeats", "1",
                 "--num-classes", "10", "--json", "--csv", str(tmp_path / "m.csv")])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == 4 and "kendall_tau" in result["uncorrected"]
    assert len(pd.read_csv(tmp_path / "m.csv")) == 4
    code = main(["profile", "measure", "--profile", str(tmp_path / "tiny_here.json"),
                 "--space", "nb201", "--n", "4"])
    assert code == 2
    assert "no latency model for space 'nb201'" in capsys.readouterr().err


def test_predictors_list_and_bad_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["predictors", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert {"mlp", "ridge", "ensemble", "lut", "transfer"} <= set(listed["predictors"])
    assert main(["predictors", "fit", "--run", str(tmp_path)]) == 2
    assert "no run directory" in capsys.readouterr().err


def test_predictors_collect_resumes_and_fit(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from nas.checkpoint import save_checkpoint
    from nas.rundir import RunDir, atomic_write_json

    space = nas.create_space("tiny")
    run = RunDir.create(tmp_path / "run", space)
    run.update_info(data={"data": "digits", "limit": 120, "seed": 0, "val_fraction": 0.25,
                          "val_split": None})
    torch.manual_seed(0)
    supernet = nas.create_supernet("tiny", num_classes=10)
    save_checkpoint(run.path / "supernet" / "checkpoint.pt",
                    {"step": 0, "epoch": 0, "batch": 0, "model": supernet.state_dict()},
                    space=space)
    atomic_write_json(run.supernet_config, {"num_classes": 10, "build": {"num_classes": 10}})
    args = ["predictors", "collect", "--run", str(run.path), "--bn-batches", "1",
            "--batch-size", "32", "--chunk", "4"]
    assert main([*args, "--n", "4"]) == 0
    samples = pd.read_csv(run.path / "samples" / "accuracy.csv")
    assert len(samples) == 4 and samples["accuracy"].between(0, 100).all()
    assert main([*args, "--n", "12"]) == 0  # resumes: the first 4 are not evaluated again
    again = pd.read_csv(run.path / "samples" / "accuracy.csv")
    assert len(again) == 12 and list(again["key"][:4]) == list(samples["key"])
    capsys.readouterr()
    assert main(["predictors", "fit", "--run", str(run.path), "--predictor", "ridge",
                 "--encoder", "onehot", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["n"] == 12 and "kendall_tau" in report["cv"]
    assert (run.path / "predictors" / "accuracy.json").is_file()
    assert (run.path / "predictors" / "accuracy_fit.json").is_file()


def test_a_malformed_profile_is_named_and_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.json").write_text("{not json")
    monkeypatch.setenv("NAS_PROFILE_PATH", str(tmp_path))
    assert main(["profile", "list"]) == 0
    captured = capsys.readouterr()
    assert "skipped 'broken'" in captured.err and "broken.json" in captured.err
    assert "nb201_pixel3" in captured.out  # the others are still listed

"""The flow through the CLI: every verb continues from the run 'nas demo --quick' leaves, the
CLI path writes the demo's schemas, a user's own space works everywhere, bugs are bugs."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from nas.cli import main

NAS = [sys.executable, "-m", "nas.cli"]


def _nas(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([*NAS, *args], capture_output=True, text=True, cwd=cwd, timeout=900)
    assert out.returncode == 0, f"nas {' '.join(args)}: {out.stderr[-2000:]}"
    return out


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    _nas("demo", "--quick", "--runs-dir", str(root), "--name", "demo")
    return root / "demo"


@pytest.mark.slow
@pytest.mark.ray
def test_every_verb_continues_from_the_demo_run(demo_run: Path) -> None:
    run = str(demo_run)
    _nas("predictors", "fit", "--run", run, "--predictor", "ridge")
    fit = json.loads((demo_run / "predictors" / "accuracy_fit.json").read_text())
    assert fit["predictor"] == "ridge"
    _nas("search", "--run", run, "--profiles", "nb201_samsung_s7", "--budget", "20",
         "--latency-quantile", "0.5", "--export-top", "-1")
    trials = pd.read_csv(demo_run / "search" / "nb201_samsung_s7" / "trials.csv")
    assert len(trials) == 20
    key = str(trials["key"].iloc[3])
    _nas("export", "--run", run, "--profile", "nb201_samsung_s7", "--arch", key, "--measure")
    metrics = json.loads((demo_run / "exports" / "nb201_samsung_s7" / key / "metrics.json")
                         .read_text())
    assert {"accuracy_predicted", "accuracy_measured", "latency_ms_predicted"} <= set(metrics)
    _nas("report", "--run", run)
    report = json.loads((demo_run / "report.json").read_text())
    assert any(r["profile"] == "nb201_samsung_s7" for r in report)


def _schema(run: Path) -> dict[str, object]:
    """The column and key sets of every artefact a run holds."""
    export = next(run.glob("exports/*/*/metrics.json"))
    plan = next(run.glob("search/*/plan.json"))
    return {
        "samples": list(pd.read_csv(run / "samples" / "accuracy.csv").columns),
        "trials": sorted(pd.read_csv(plan.parent / "trials.csv").columns),
        "plan": sorted(json.loads(plan.read_text())),
        "fit": sorted(json.loads((run / "predictors" / "accuracy_fit.json").read_text())),
        "supernet": sorted(json.loads((run / "supernet" / "config.json").read_text())),
        "export": sorted(set(json.loads(export.read_text())) - {"accuracy_onnx",
                                                               "accuracy_measured",
                                                               "latency_ms_measured"}),
        "run": sorted(set(json.loads((run / "run.json").read_text())) - {"made_by",
                                                                        "settings"}),
    }


@pytest.mark.slow
@pytest.mark.ray
def test_cli_path_writes_the_demo_schemas(demo_run: Path, tmp_path: Path) -> None:
    runs = str(tmp_path)
    _nas("train", "--space", "nb201", "--data", "digits", "--limit", "300", "--epochs", "1",
         "--option", "channels=8", "--option", "cells_per_stage=1", "--option", "resolution=16",
         "--runs-dir", runs, "--run", "cli")
    run = str(tmp_path / "cli")
    _nas("predictors", "collect", "--run", run, "--n", "12", "--bn-batches", "2")
    _nas("predictors", "fit", "--run", run)
    _nas("search", "--run", run, "--profiles", "nb201_pixel3", "--budget", "10",
         "--sequential", "--max-latency", "30", "--export-top", "0")
    _nas("report", "--run", run)
    assert _schema(tmp_path / "cli") == _schema(demo_run)


MY_SPACE = textwrap.dedent('''
    import nas
    from nas import SearchSpace, choice, stage
    from search_spaces.mobilenet_v3_net import MobileNetV3Supernet, layer_specs

    def make_space() -> SearchSpace:
        dims = [
            *stage("s1", depth=[1, 2], block={"kernel": [3, 5], "expand": [2, 4]}),
            *stage("s2", depth=[1, 2, 3], block={"kernel": [3, 5], "expand": [2, 3, 4]}),
            choice("resolution", [16, 20, 24]),
        ]
        meta = {"family": "mobilenetv3", "width_mult": 1.0, "stem_width": 8,
                "first_block_width": 8, "stage_widths": [16, 32], "strides": [2, 2],
                "activations": ["relu", "h_swish"], "squeeze_excite": [False, True],
                "final_expand_width": 64, "last_channel": 96}
        return SearchSpace("my_space", dims, meta)

    nas.register_space("my_space", make_space, MobileNetV3Supernet, layers=layer_specs)
''')


@pytest.mark.slow
def test_readme_custom_space_through_the_cli(tmp_path: Path) -> None:
    (tmp_path / "myspaces.py").write_text(MY_SPACE)
    _nas("train", "--space", "myspaces:my_space", "--limit", "200", "--epochs", "1",
         "--run", "mine", cwd=tmp_path)
    _nas("profile", "import", "--run", "mine", "--measure-here", "8", "--name", "here",
         cwd=tmp_path)
    _nas("search", "--run", "mine", "--profiles", "here", "--budget", "6", "--sequential",
         "--accuracy", "measured", "--images", "64", "--bn-batches", "1", "--export-top", "-1",
         cwd=tmp_path)
    key = str(pd.read_csv(tmp_path / "runs/mine/search/here/trials.csv")["key"].iloc[0])
    _nas("export", "--run", "mine", "--profile", "here", "--arch", key, cwd=tmp_path)
    export = tmp_path / "runs" / "mine" / "exports" / "here" / key
    code = (f"import nas, torch; m = nas.load_subnet(r'{export}'); "
            "print(tuple(m(torch.randn(1, 3, 16, 16)).shape))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "(1, 10)"


def test_a_bug_is_reported_as_a_bug(monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    import nas.flow

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("something inside broke")

    monkeypatch.setattr(nas.flow, "train", broken)
    code = main(["train", "--space", "tiny", "--runs-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "internal error" in err and "RuntimeError: something inside broke" in err
    assert "--debug" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(RuntimeError):
        main(["--debug", "train", "--space", "tiny", "--runs-dir", str(tmp_path)])


def test_a_user_error_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    assert main(["train", "--space", "nope", "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nas train: error: unknown search space 'nope'")
    assert len(err.splitlines()) == 1
    assert not any(tmp_path.iterdir())  # nothing was created

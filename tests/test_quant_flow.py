"""The quantized flow end to end on ``tiny+q8-32b``: train, search with a size limit and size
as an objective, export with the policy, report; and the pieces (objectives, counted size,
precision colours) on their own."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nas
from nas import flow
from nas.cli import main
from nas.devices import CountedMetrics, DevicePlan
from nas.quantization import policy_of
from nas.registry import SpaceRef
from nas.tasks import DataSpec

QSPACE = "tiny+q8-32b"
MAX_SIZE = 50_000  # bytes: binds on some tiny archs (about 28k to 110k), not all


@pytest.fixture(scope="module")
def quant_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("quant") / "q"
    flow.train(run, QSPACE, data=DataSpec(data="digits", limit=240, val_fraction=0.25),
               config=nas.TrainConfig(epochs=1, batch_size=32, eval_bn_batches=1))
    _profile(run / "profiles" / "here.json")
    return run


def _profile(path: Path) -> None:
    """A hand-made ONNX Runtime profile of the quantized space: int8 blocks are faster."""
    from nas.hardware.profile import HardwareProfile, LatencyModel, Provenance, save_profile
    from predictors import create_predictor
    from predictors.io import predictor_to_json

    space = nas.create_space(QSPACE)
    archs = space.sample_many(80, np.random.default_rng(0))
    y = [float(a["resolution"]) / 8 + float(a["s1.depth"]) + float(a["s2.depth"])
         + 0.5 * sum(b == 32 for b in policy_of(space, a).values()) for a in archs]
    predictor = create_predictor("ridge", space=space).fit(archs, np.array(y))
    model = LatencyModel(space=QSPACE, fingerprint=space.fingerprint(),
                         predictor=predictor_to_json(predictor))
    save_profile(HardwareProfile(name="here", kind="cpu", device="test", runtime="onnxruntime",
                                 provenance=Provenance(source="synthetic", licence="CC0"),
                                 latency={QSPACE: model}), path)


def _search(run: Path, *extra: str) -> int:
    return main(["search", "--run", str(run), "--profiles", "here", "--searcher", "nsga2",
                 "--budget", "12", "--batch-size", "4", "--accuracy", "measured",
                 "--images", "60", "--bn-batches", "1", "--sequential", *extra])


@pytest.mark.slow
def test_search_export_report_carry_the_policy(
    quant_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    space = nas.create_space(QSPACE)
    assert _search(quant_run, "--max-size", "50k", "--objectives",
                   "accuracy,latency_ms,size_bytes", "--export-top", "1",
                   "--formats", "torch,onnx", "--json") == 0
    summary = json.loads(capsys.readouterr().out)["here"]
    plan = json.loads((quant_run / "search" / "here" / "plan.json").read_text())
    assert plan["objectives"] == {"accuracy": "max", "latency_ms": "min", "size_bytes": "min"}
    assert plan["constraints"] == {"size_bytes": MAX_SIZE}
    assert plan["sources"]["size_bytes"] == "counted"
    trials = pd.read_csv(quant_run / "search" / "here" / "trials.csv")
    counted = [nas.count(space, space.from_json(a), 10)["size_bytes"] for a in trials["arch"]]
    assert trials["size_bytes"].tolist() == counted
    assert (trials["feasible"] == (trials["size_bytes"] <= MAX_SIZE)).all()
    assert summary["exported"]
    for folder in map(Path, summary["exported"]):
        written = json.loads((folder / "arch.json").read_text())
        arch = space.from_json(written["arch"])
        info = written["quantization"]
        assert info["policy"] == policy_of(space, arch)
        metrics = json.loads((folder / "metrics.json").read_text())
        assert metrics["size_bytes"] <= MAX_SIZE and metrics["size_bytes"] == info["size_bytes"]
        assert metrics["policy"] == ",".join(map(str, policy_of(space, arch).values()))
        assert (folder / "model_float.onnx").is_file()
    # a trial with int8 blocks, exported by key and measured: fake-quantized metric, ORT time
    quantized = [a for a in map(space.from_json, trials["arch"])
                 if 8 in policy_of(space, a).values()]
    key = quantized[0].key
    assert main(["export", "--run", str(quant_run), "--profile", "here", "--arch", key,
                 "--measure", "--json"]) == 0
    out = Path(json.loads(capsys.readouterr().out)["path"])
    info = json.loads((out / "arch.json").read_text())["quantization"]
    assert info["quantized_nodes"] and 8 in info["policy"].values()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["latency_ms_onnx"] > 0 and 0 <= metrics["accuracy_measured"] <= 100
    assert metrics["size_bytes"] < 4 * metrics["params"]
    # the library's ONNX check runs the quantized model in ONNX Runtime
    (checked,) = flow.export_chosen(quant_run, archs={"here": [quantized[0]]}, onnx_check=True,
                                    measure=True)
    checked_metrics = json.loads((checked / "metrics.json").read_text())
    assert abs(checked_metrics["accuracy_onnx"] - checked_metrics["accuracy_measured"]) <= 2.0
    html, md = flow.write_report(quant_run)
    text = md.read_text()
    assert "size (bytes)" in text and "| policy |" in text and "latency ONNX Runtime" in text
    assert metrics["policy"] in text and html.is_file()
    png = quant_run / "search" / "here" / "pareto.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_low_bit_share_weighs_the_quantized_blocks() -> None:
    from nas.quantization.support import quant_support
    from nas.search.plot import low_bit_share

    space = nas.create_space(QSPACE)
    largest = space.largest()
    bits = [n for n in space.names if n.endswith(".bits")]
    all8 = largest.replace(space, **{n: 8 for n in bits})
    one8 = largest.replace(space, **{n: 8 if n == bits[0] else 32 for n in bits})
    share = low_bit_share(space, [largest, all8, one8])
    assert share is not None and share[0] == 0.0 and share[1] == 1.0
    weights = quant_support(space).weights(space, one8)
    group = bits[0].rpartition(".")[0]
    assert share[2] == pytest.approx(weights[group] / sum(weights.values()))
    assert low_bit_share(nas.create_space("tiny"), [nas.create_space("tiny").largest()]) is None


def test_counted_size_is_four_bytes_a_parameter_without_a_policy() -> None:
    def latency(profile: str, archs: list[nas.ArchConfig]) -> list[dict[str, float]]:
        return [{"latency_ms": 1.0} for _ in archs]

    for name in ("tiny", QSPACE):
        space = nas.create_space(name)
        archs = space.sample_many(5, np.random.default_rng(0))
        rows = CountedMetrics(latency, SpaceRef.of(space), 10)("p", archs)
        for arch, row in zip(archs, rows):
            counts = nas.count(space, arch, 10)
            assert row["size_bytes"] == counts.get("size_bytes", 4 * counts["params"])
            assert row["latency_ms"] == 1.0
        if name == "tiny":
            assert all(r["size_bytes"] == 4 * r["params"] for r in rows)


def test_objectives_parse_and_bad_ones_name_what_is_allowed() -> None:
    from nas.cli import UsageError
    from nas.cli.search import parse_objectives

    allowed = ("accuracy", "loss", "latency_ms", "params", "macs", "size_bytes")
    task = {"accuracy": "max", "latency_ms": "min"}
    assert parse_objectives("accuracy,latency_ms,size_bytes", task, allowed) == {
        "accuracy": "max", "latency_ms": "min", "size_bytes": "min"}
    assert parse_objectives("accuracy:max,params:min", task, allowed) == {
        "accuracy": "max", "params": "min"}
    assert parse_objectives(None, task, allowed) is None
    for bad in ("beauty", "accuracy:up", "accuracy,accuracy", ""):
        with pytest.raises(UsageError, match="--objectives") as err:
            parse_objectives(bad, task, allowed)
        assert "size_bytes" in str(err.value)
    with pytest.raises(nas.ConfigError, match="direction must be 'max' or 'min'"):
        DevicePlan(objectives={"accuracy": "up"})
    with pytest.raises(nas.ConfigError, match="at least one metric"):
        DevicePlan(objectives={})


def test_an_unknown_objective_fails_before_any_search(quant_run: Path) -> None:
    plan = DevicePlan(budget=4, objectives={"accuracy": "max", "beauty": "min"})
    with pytest.raises(nas.ConfigError, match=r"'beauty' is not a metric.*size_bytes"):
        flow.search_run(quant_run, ["here"], plan, accuracy="measured", parallel=False,
                        resume=True)

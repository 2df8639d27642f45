"""Every step of the flow as a library function on one tiny run (the default test run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import nas
from nas import flow
from nas.devices import DevicePlan
from nas.tasks import DataSpec


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("flow") / "tiny"
    flow.train(run, "tiny", data=DataSpec(data="digits", limit=240, val_fraction=0.25),
               config=nas.TrainConfig(epochs=1, batch_size=32, eval_bn_batches=1))
    return run


def test_train_records_what_rebuilds_the_network(tiny_run: Path) -> None:
    config = json.loads((tiny_run / "supernet" / "config.json").read_text())
    assert config["build"] == {"num_classes": 10} and config["task"] == "classification"
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["task"] == "classification" and info["data"]["limit"] == 240
    supernet = flow.load_supernet(tiny_run)
    assert supernet.num_classes == 10 and not supernet.training


def test_samples_predictor_profile_search_export_report(tiny_run: Path) -> None:
    samples = flow.collect_samples(tiny_run, 12, bn_batches=1, chunk=5)
    assert list(samples.frame.columns) == ["key", "arch", "accuracy", "loss"]
    again = flow.collect_samples(tiny_run, 12, bn_batches=1)  # nothing left to measure
    assert again.frame["key"].tolist() == samples.frame["key"].tolist()
    report = flow.fit_predictor(tiny_run, predictor="ridge", folds=3)
    assert report.n == len(samples.archs) and set(report.cv) >= {"kendall_tau", "rmse"}
    path = flow.measure_profile(tiny_run, "here", n=6, timing=flow.Timing(num_classes=10,
                                                                          repeats=2))
    assert path == tiny_run / "profiles" / "here.json"
    limits = flow.latency_limits(tiny_run, ["here"], 0.9)
    plan = DevicePlan(budget=8, batch_size=4,
                      constraints={"here": {"latency_ms": limits["here"]}})
    results = flow.search_run(tiny_run, ["here"], plan, parallel=False)
    assert len(results["here"]) == 8
    plan_json = json.loads((tiny_run / "search" / "here" / "plan.json").read_text())
    assert plan_json["sources"] == {"accuracy": "predicted", "latency_ms": "predicted"}
    paths = flow.export_chosen(tiny_run, results=results, top_k=0, formats=("torch",),
                               measure=True)
    metrics = json.loads((paths[0] / "metrics.json").read_text())
    assert {"accuracy_predicted", "accuracy_measured", "latency_ms_predicted",
            "latency_ms_measured", "latency_limit_ms", "params", "macs"} <= set(metrics)
    assert flow.load_search(tiny_run, "here").trials["key"].tolist() == \
        results["here"].trials["key"].tolist()
    html, md = flow.write_report(tiny_run)
    assert "accuracy measured (%)" in md.read_text() and html.is_file()
    assert {"train", "collect samples", "export the chosen subnets"} <= set(
        json.loads((tiny_run / "timings.json").read_text()))


def test_a_mismatched_or_missing_artefact_names_the_file(tiny_run: Path, tmp_path: Path) -> None:
    from nas.rundir import RunDir

    with pytest.raises(nas.RunDirError, match="made for space 'tiny'"):
        RunDir.open(tiny_run, nas.create_space("nb201"))
    bad = RunDir.open(tiny_run)
    bad.samples_csv("broken").write_text("key,arch,accuracy\nabc,{not json,1.0\n")
    with pytest.raises(nas.RunDirError, match=r"broken\.csv: line 2, column 'arch'"):
        bad.read_samples("broken")
    with pytest.raises(nas.RunDirError, match="no search for profile 'nope'"):
        flow.load_search(tiny_run, "nope")
    with pytest.raises(nas.ProfileError, match="no hardware profile 'nope'"):
        flow.search_run(tiny_run, ["nope"], DevicePlan(budget=4), parallel=False)
    assert not (tiny_run / "search" / "nope").exists()  # nothing written on a bad profile


def test_joining_a_cluster_that_does_not_answer_fails_fast() -> None:
    import socket
    import time

    from nas.distributed.local import check_reachable

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.perf_counter()
    with pytest.raises(nas.ConfigError, match=f"127.0.0.1:{port}.*no Ray cluster answers"):
        check_reachable(f"127.0.0.1:{port}", timeout_s=2.0)
    assert time.perf_counter() - started < 5.0
    with pytest.raises(nas.ConfigError, match="expected HOST:PORT"):
        check_reachable("nowhere")

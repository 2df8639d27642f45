"""Hardware profiles, latency measurement, lookup-table building and the LUT predictor."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas.hardware import (
    HardwareProfile,
    LatencyModel,
    Provenance,
    build_lookup_table,
    distinct_layers,
    list_profiles,
    load_profile,
    measure_latency,
    measure_subnets,
    save_profile,
)
from nas.hardware.profile import PROFILE_DIR
from nas.registry import REGISTRY
from predictors import kendall_tau
from predictors.io import latency_predictor, predictor_to_json
from predictors.lookup_table import LookupTablePredictor, UnknownLayerError

TINY = nas.create_space("tiny")
NB201 = nas.create_space("nb201")
DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def _profile(**changes: Any) -> HardwareProfile:
    fields: dict[str, Any] = {
        "name": "test_dev",
        "kind": "cpu",
        "device": "test CPU",
        "runtime": "torch",
        "threads": 1,
        "provenance": Provenance(source="tests", licence="CC0-1.0"),
        "latency": {
            "tiny": LatencyModel(space="tiny", fingerprint=TINY.fingerprint(), lut={"a": 1.0})
        },
    }
    return HardwareProfile(**{**fields, **changes})


# ---------------------------------------------------------------- profiles
def test_profile_round_trip(tmp_path: Path) -> None:
    profile = _profile()
    path = save_profile(profile, tmp_path)
    assert path == tmp_path / "test_dev.json"
    again = load_profile(path)
    assert again == profile
    assert again.model_for(TINY).lut == {"a": 1.0}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("kind", "toaster", "'kind'"), ("runtime", "magic", "'runtime'"), ("batch_size", 0, "batch")],
)
def test_profile_rejects_bad_fields(field: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _profile(**{field: value})


def test_malformed_profile_files_name_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match=r"bad\.json"):
        load_profile(bad)
    data = _profile().to_dict()
    del data["provenance"]
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad.json.*provenance"):
        load_profile(bad)
    data = _profile().to_dict()
    data["latency"]["tiny"]["lut"] = {"a": "fast"}
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad.json.*latency.tiny.*lut"):
        load_profile(bad)
    data = _profile().to_dict()
    data["kind"] = "toaster"
    bad.write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"bad.json.*'kind'"):
        load_profile(bad)
    with pytest.raises(FileNotFoundError, match="known profiles"):
        load_profile("no_such_profile")


def test_profile_for_another_space_is_refused() -> None:
    profile = _profile()
    with pytest.raises(ValueError, match="no latency model for space 'nb201'"):
        profile.model_for(NB201)
    stale_model = LatencyModel(space="tiny", fingerprint="0" * 16, lut={"a": 1})
    stale = _profile(latency={"tiny": stale_model})
    with pytest.raises(ValueError, match="fingerprint"):
        stale.model_for(TINY)


def test_shipped_profiles_have_provenance_and_are_small() -> None:
    names = list_profiles()
    expected = {f"nb201_{d}" for d in ("1080ti_1", "1080ti_32", "silver_4114", "silver_4210r",
                                       "samsung_a50", "pixel3", "essential_ph_1", "samsung_s7")}
    expected |= {f"ofa_mbv3_{g}_{b}" for g in ("2080ti", "titan_rtx") for b in (1, 32, 64)}
    assert expected <= set(names)
    for name in expected:
        assert (PROFILE_DIR / f"{name}.json").stat().st_size < 1_000_000
        profile = load_profile(name)
        assert profile.provenance.source and profile.provenance.licence == "MIT"
        for model in profile.latency.values():
            assert model.validation["kendall_tau"] > 0.5
            assert model.validation["n_test"] >= 1000


def test_wheel_ships_every_profile(tmp_path: Path) -> None:
    """A non-editable install carries ``hardware_profiles`` and finds them by resource."""
    import shutil
    import subprocess
    import sys
    import zipfile

    root = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, src / name)
    for package in ("nas", "search_spaces", "predictors", "hardware_profiles"):
        shutil.copytree(root / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True, timeout=120,
    )
    assert build.returncode == 0, build.stderr[-2000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    shipped = sorted(p.name for p in (root / "hardware_profiles").glob("*.json"))
    assert len(shipped) >= 15
    with zipfile.ZipFile(wheel) as z:
        in_wheel = sorted(
            n.split("/", 1)[1] for n in z.namelist()
            if n.startswith("hardware_profiles/") and n.endswith(".json")
        )
        assert in_wheel == shipped
        z.extractall(tmp_path / "site")  # a pure wheel installs by unpacking
    # the installed copy, imported from elsewhere, finds its profiles through the package
    probe = (
        "import nas, nas.hardware.profile as hp, hardware_profiles, pathlib;"
        "assert pathlib.Path(nas.__file__).is_relative_to(pathlib.Path.cwd()), nas.__file__;"
        "assert hp.PROFILE_DIR == pathlib.Path(hardware_profiles.__file__).parent.resolve();"
        "print(len(nas.list_profiles()), nas.load_profile('nb201_pixel3').name)"
    )
    env = {k: v for k, v in os.environ.items() if k != "NAS_PROFILE_PATH"}
    env["PYTHONPATH"] = str(tmp_path / "site")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path / "site", env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == [str(len(shipped)), "nb201_pixel3"]


def test_profile_dir_is_the_package_resource() -> None:
    from importlib import resources

    from nas.hardware.profile import shipped_profile_dir

    assert shipped_profile_dir() == PROFILE_DIR
    assert (PROFILE_DIR / "__init__.py").is_file()
    try:
        package = resources.files("hardware_profiles")
    except ModuleNotFoundError:  # an editable install made before the folder was a package
        pytest.skip("hardware_profiles is not importable here")
    names = {p.name for p in package.iterdir() if p.name.endswith(".json")}
    assert names == {p.name for p in PROFILE_DIR.glob("*.json")}


@pytest.mark.skipif(not (DATA / "nas_bench_201").is_dir(), reason="shared data not present")
def test_shipped_nb201_profile_ranks_real_measurements() -> None:
    import pandas as pd

    frame = pd.read_csv(DATA / "nas_bench_201" / "nb201_cifar10_latency.csv", nrows=2000)
    archs = [NB201.parse(a) for a in frame["arch"]]  # type: ignore[attr-defined]
    p = latency_predictor(load_profile("nb201_pixel3"), NB201)
    assert kendall_tau(frame["latency_ms_pixel3"], p.predict(archs)) > 0.8


# ---------------------------------------------------------------- measuring
def test_measure_latency_torch_and_onnxruntime() -> None:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
    stats = measure_latency(model, (1, 3, 16, 16), warmup=1, repeats=5)
    assert stats.repeats == 5
    assert 0 < stats.min_ms <= stats.median_ms
    assert stats.iqr_ms >= 0
    ort = measure_latency(model, (1, 3, 16, 16), runtime="onnxruntime", warmup=1, repeats=3)
    assert ort.median_ms > 0
    with pytest.raises(ValueError, match="runtime must be one of"):
        measure_latency(model, (1, 3, 16, 16), runtime="tvm")
    with pytest.raises(ValueError, match="repeats"):
        measure_latency(model, (1, 3, 16, 16), repeats=0)


@pytest.mark.gpu
def test_measure_latency_cuda() -> None:
    model = nn.Conv2d(3, 8, 3)
    assert measure_latency(model, (1, 3, 32, 32), device="cuda", repeats=3).median_ms > 0


def test_measure_subnets_tiny() -> None:
    archs = TINY.sample_many(2, np.random.default_rng(0))
    rows = measure_subnets(TINY, archs, num_classes=10, warmup=0, repeats=2)
    assert len(rows) == 2 and all(r["median_ms"] > 0 for r in rows)


# ---------------------------------------------------------------- lookup tables
def test_distinct_layers_cover_random_archs() -> None:
    specs = {s.key for s in distinct_layers(TINY, num_classes=10, extra=0)}
    layers = REGISTRY.entry("tiny").layers
    assert layers is not None
    for arch in TINY.sample_many(100, np.random.default_rng(7)):
        assert {s.key for s in layers(TINY, arch, 10)} <= specs


def test_build_lookup_table_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.hardware.build as build

    calls: list[int] = []
    interrupt = [True]
    real = build.measure_latency

    class Interrupted(Exception):
        pass

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 5 and interrupt[0]:
            interrupt[0] = False
            raise Interrupted  # simulate an interruption mid-build
        return real(*args, **kwargs)

    monkeypatch.setattr(build, "measure_latency", counting)
    partial = tmp_path / "partial.json"
    with pytest.raises(Interrupted):
        build_lookup_table(TINY, num_classes=10, warmup=0, repeats=1, partial_path=partial)
    saved = json.loads(partial.read_text())["layers"]
    assert len(saved) == 4
    calls.clear()
    table = build_lookup_table(TINY, num_classes=10, warmup=0, repeats=1, partial_path=partial)
    n_layers = len(distinct_layers(TINY, num_classes=10))
    assert len(table) == n_layers and len(calls) == n_layers - 4
    assert all(v["median_ms"] > 0 for v in table.values())
    with pytest.raises(ValueError, match="other settings"):
        build_lookup_table(TINY, num_classes=10, batch_size=2, partial_path=partial)


def _macs_table() -> dict[str, float]:
    return {s.key: 1e-6 * s.macs() + 0.01 for s in distinct_layers(TINY, num_classes=10)}


def test_lut_predictor_sums_and_corrects(tmp_path: Path) -> None:
    table = _macs_table()
    p = LookupTablePredictor(TINY, table=table, num_classes=10)
    archs = TINY.sample_many(40, np.random.default_rng(0))
    layers = REGISTRY.entry("tiny").layers
    assert layers is not None
    sums = np.array([sum(table[s.key] for s in layers(TINY, a, 10)) for a in archs])
    np.testing.assert_allclose(p.predict(archs), sums)
    measured = 2.0 * sums + 0.5  # what the sum misses: a scale and an overhead
    p.fit(archs[:20], measured[:20])
    np.testing.assert_allclose(p.predict(archs[20:]), measured[20:], rtol=1e-3)
    rows = TINY.indices(archs, fill_inactive=False)
    np.testing.assert_array_equal(p.predict_indices(rows), p.predict(archs))
    profile = _profile(latency={"tiny": LatencyModel(
        space="tiny", fingerprint=TINY.fingerprint(), lut=table, num_classes=10,
        predictor=predictor_to_json(p))})
    again = latency_predictor(load_profile(save_profile(profile, tmp_path)), TINY)
    np.testing.assert_allclose(again.predict(archs), p.predict(archs))


def test_lut_unknown_layer_names_the_key() -> None:
    table = _macs_table()
    table.pop(next(iter(table)))
    p = LookupTablePredictor(TINY, table=table, num_classes=10)
    with pytest.raises(UnknownLayerError, match="not in the lookup table"):
        p.predict(TINY.sample_many(50, np.random.default_rng(0)))


def test_measure_min_time_gives_tiny_models_more_runs() -> None:
    tiny = nn.Linear(4, 4)
    stats = measure_latency(tiny, (1, 4), warmup=0, repeats=3, min_time_s=0.002)
    assert stats.repeats > 3
    capped = measure_latency(tiny, (1, 4), warmup=0, repeats=3, min_time_s=10.0, max_repeats=7)
    assert capped.repeats == 7
    assert measure_latency(tiny, (1, 4), warmup=0, repeats=3).repeats == 3
    with pytest.raises(ValueError, match="max_repeats"):
        measure_latency(tiny, (1, 4), repeats=5, max_repeats=4)
    with pytest.raises(ValueError, match="min_time_s"):
        measure_latency(tiny, (1, 4), min_time_s=-1.0)


def test_rounds_sweep_in_new_random_orders(monkeypatch: pytest.MonkeyPatch) -> None:
    import nas.hardware.build as build

    seen: list[tuple[int, ...]] = []
    fake = measure_latency(nn.Linear(2, 2), (1, 2), warmup=0, repeats=1)
    monkeypatch.setattr(build, "measure_latency",
                        lambda _m, shape, **kw: seen.append(tuple(shape)) or fake)
    build_lookup_table(TINY, num_classes=10, rounds=3)
    n = len(distinct_layers(TINY, num_classes=10))
    rounds = [seen[i * n : (i + 1) * n] for i in range(3)]
    assert len(seen) == 3 * n
    assert all(sorted(r) == sorted(rounds[0]) for r in rounds)  # every layer, every round
    assert rounds[0] != rounds[1] != rounds[2]
    seen.clear()
    build_lookup_table(TINY, num_classes=10, rounds=3)
    assert [seen[i * n : (i + 1) * n] for i in range(3)] == rounds  # seeded


def test_measure_uses_given_threads() -> None:
    before = torch.get_num_threads()
    measure_latency(nn.Linear(4, 4), (1, 4), repeats=1, threads=1)
    assert torch.get_num_threads() == before


def test_profile_latency_uses_the_index_path_and_sees_a_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nas.devices import ProfileLatency
    from nas.registry import SpaceRef

    profile_latency = ProfileLatency(SpaceRef.of(TINY), {})
    table = _macs_table()
    model = LatencyModel(space="tiny", fingerprint=TINY.fingerprint(), lut=table, num_classes=10)
    path = save_profile(_profile(latency={"tiny": model}), tmp_path)
    archs = TINY.sample_many(30, np.random.default_rng(1))
    want = LookupTablePredictor(TINY, table=table, num_classes=10).predict(archs)
    calls: list[int] = []
    original = LookupTablePredictor.predict_indices

    def counted(self: LookupTablePredictor, idx: Any) -> np.ndarray:
        calls.append(len(idx))
        return original(self, idx)

    monkeypatch.setattr(LookupTablePredictor, "predict_indices", counted)
    got = [m["latency_ms"] for m in profile_latency(str(path), archs)]  # located by path
    np.testing.assert_allclose(got, want, rtol=1e-12)
    assert calls == [30]
    doubled = {k: 2 * v for k, v in table.items()}
    model = LatencyModel(space="tiny", fingerprint=TINY.fingerprint(), lut=doubled, num_classes=10)
    save_profile(_profile(latency={"tiny": model}), tmp_path)
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    again = [m["latency_ms"] for m in profile_latency(str(path), archs)]
    np.testing.assert_allclose(again, 2 * want, rtol=1e-12)

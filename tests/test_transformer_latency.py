"""Latency lookup tables of transformer spaces: each layer on its own input, a sequence
length per table, whole subnets on token ids, the correction and the profile's record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas.errors import ConfigError, ProfileError
from nas.flow import Timing, build_profile, validate_profile
from nas.hardware import (
    HardwareProfile,
    Provenance,
    build_lookup_table,
    distinct_layers,
    load_profile,
    measure_latency,
    measure_subnets,
)
from nas.hardware.inputs import layer_case
from nas.predictor import latency_predictor
from nas.registry import REGISTRY
from nas.sequence import at_seq_len, sequence_length
from predictors.lookup_table import LookupTablePredictor

QUICK: dict[str, Any] = {"warmup": 0, "repeats": 1}


@pytest.mark.parametrize("name,width", [("gpt_tiny", 256), ("llama_tiny", 256),
                                        ("vit_mini", 10)])
def test_every_distinct_layer_runs_on_its_own_input(name: str, width: int) -> None:
    space = nas.create_space(name)
    specs = distinct_layers(space, num_classes=width, extra=0)
    kinds = {s.kind for s in specs}
    assert "transformer_block" in kinds and len(specs) > 20
    for spec in specs:
        module, x = layer_case(spec, batch=2, seq_len=None if name == "vit_mini" else 8)
        if spec.kind == "linear":  # the ViT's classifier: a random float input's shape
            assert x == (2, spec.in_channels)
            continue
        assert isinstance(x, torch.Tensor)
        with torch.inference_mode():
            y = module(x)
        if spec.kind == "token_embed":
            assert x.dtype == torch.int64 and tuple(y.shape) == (2, 8, spec.out_channels)
        elif spec.kind == "patch_embed":
            assert x.shape[1:] == (3, 28, 28)
        elif spec.kind == "transformer_block":
            assert y.shape == x.shape


def test_the_cover_holds_every_block_shape_without_random_archs() -> None:
    # every (width, heads, MLP ratio) combination: 3 x 3 x 3 blocks, plus 4 layers per width
    space = nas.create_space("gpt_tiny")
    assert len(distinct_layers(space, num_classes=256, extra=0)) == 27 + 4 * 3


def test_sequence_length_default_and_checks() -> None:
    gpt, vit = nas.create_space("gpt_tiny"), nas.create_space("vit_mini")
    assert sequence_length(gpt, None) == 128 and sequence_length(gpt, 64) == 64
    assert sequence_length(vit, None) is None
    with pytest.raises(ConfigError, match="has no sequence length"):
        sequence_length(vit, 64)
    with pytest.raises(ConfigError, match=r"exceeds space 'gpt_tiny'.s max_positions=256"):
        sequence_length(gpt, 512)
    with pytest.raises(ConfigError, match="positive int"):
        sequence_length(gpt, 0)
    specs = REGISTRY.entry("gpt_tiny").layers(gpt, gpt.largest(), 256)  # type: ignore[misc]
    moved = at_seq_len(specs, 32)
    assert {s.get("tokens") for s in moved} == {32}
    assert [s.kind for s in moved] == [s.kind for s in specs]


def test_measure_latency_takes_an_input_tensor() -> None:
    embed = nn.Embedding(50, 8)
    ids = torch.randint(0, 50, (1, 16))
    assert measure_latency(embed, ids, warmup=0, repeats=2).median_ms > 0
    pytest.importorskip("onnxruntime", reason="onnxruntime times the ONNX export")
    stats = measure_latency(embed, ids, runtime="onnxruntime", warmup=0, repeats=2)
    assert stats.repeats == 2


def test_lookup_table_predicts_and_corrects_whole_gpt_subnets(tmp_path: Path) -> None:
    space = nas.create_space("gpt_tiny")
    partial = tmp_path / "partial.json"
    table = build_lookup_table(space, num_classes=256, seq_len=32, partial_path=partial,
                               **QUICK)
    assert set(table) == {s.key for s in distinct_layers(space, num_classes=256)}
    assert json.loads(partial.read_text())["settings"]["seq_len"] == 32
    with pytest.raises(ConfigError, match="other settings"):  # a resume at another length
        build_lookup_table(space, num_classes=256, seq_len=64, partial_path=partial, **QUICK)
    archs = space.sample_many(8, np.random.default_rng(0))
    rows = measure_subnets(space, archs, num_classes=256, seq_len=32, **QUICK)
    measured = np.array([r["median_ms"] for r in rows])
    lut = {k: v["median_ms"] for k, v in table.items()}
    plain = LookupTablePredictor(space, table=lut, num_classes=256)
    assert np.all(plain.predict(archs) > 0)
    fitted = LookupTablePredictor(space, table=lut, num_classes=256).fit(archs, measured)
    assert np.all(np.isfinite(fitted.predict(archs)))
    assert not np.allclose(fitted.predict(archs), plain.predict(archs))


def test_subnets_of_a_vit_are_timed_on_images() -> None:
    space = nas.create_space("vit_mini")
    rows = measure_subnets(space, [space.smallest(), space.largest()], num_classes=10, rounds=2,
                           keep_models=False, **QUICK)
    assert all(r["median_ms"] > 0 for r in rows)
    with pytest.raises(ConfigError, match="no sequence length"):
        measure_subnets(space, [space.smallest()], num_classes=10, seq_len=16, **QUICK)


def test_profile_records_the_sequence_length_and_the_correction_fits(tmp_path: Path) -> None:
    timing = Timing(num_classes=256, seq_len=32, warmup=0, repeats=1)
    path = build_profile("gpt_tiny", "here_gpt", out=tmp_path, timing=timing)
    data = json.loads(path.read_text())
    assert (data["batch_size"], data["seq_len"]) == (1, 32)
    assert "32 tokens per sequence" in data["provenance"]["notes"]
    profile = load_profile(path)
    assert profile.seq_len == 32
    space = nas.create_space("gpt_tiny")
    result = validate_profile(space, path, n=8, fit_correction=True,
                              timing=Timing(num_classes=256, warmup=0, repeats=1, seq_len=32))
    assert set(result) >= {"uncorrected", "corrected_holdout", "saved"}
    corrected = load_profile(path)
    assert corrected.seq_len == 32 and corrected.model_for(space).predictor is not None
    assert np.all(latency_predictor(corrected, space).predict([space.largest()]) > 0)


def test_profiles_without_a_sequence_length_keep_their_form() -> None:
    profile = HardwareProfile(name="p", kind="cpu", device="d", runtime="torch",
                              provenance=Provenance(source="s", licence="CC0-1.0"))
    assert "seq_len" not in profile.to_dict()
    with pytest.raises(ProfileError, match="'seq_len' must be an int >= 0"):
        HardwareProfile.from_dict({**profile.to_dict(), "seq_len": -1})
    assert HardwareProfile.from_dict({**profile.to_dict(), "seq_len": 64}).seq_len == 64


def test_validation_defaults_to_the_profiles_head_and_sequence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import nas.hardware.build as build

    timing = Timing(num_classes=256, seq_len=16, warmup=0, repeats=1)
    path = build_profile("gpt_tiny", "short", out=tmp_path, timing=timing)
    seen: list[dict[str, object]] = []
    real = build.measure_subnets

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build, "measure_subnets", spy)
    result = validate_profile("gpt_tiny", path, n=4)
    assert (seen[0]["num_classes"], seen[0]["seq_len"]) == (256, 16)
    assert result["n"] == 4 and np.isfinite(result["uncorrected"]["mape"])
